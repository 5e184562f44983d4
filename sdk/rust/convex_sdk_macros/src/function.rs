//! `#[query]`, `#[mutation]`, `#[action]`, `#[http_action]`.
//!
//! For `#[query] async fn get_user(db: Database, id: String) -> R` in module
//! `users`, the output is the function unchanged plus:
//!
//! - `__convex_export_get_user`, exported on wasm as
//!   `cvx:users::get_user` with signature `(args_len: i32) -> i32` (ABI §5):
//!   it decodes each client argument by name, creates the context
//!   parameters, runs the function (polling its future) and reports the
//!   result, all through `convex_sdk::__private::run_function`;
//! - `__convex_meta_get_user`, a `#[used]` static in the `cvx.fn` custom
//!   section holding the metadata record (ABI §4), built at compile time by
//!   const fns because only `module_path!()` knows the module;
//! - `struct get_user {}` (type namespace, so it does not clash with the
//!   function) implementing `convex_sdk::ConvexFunction`, so tests and code
//!   can name the function as a type: `testing::call::<get_user>(args)`.
//!
//! An `#[http_action]` is the same with a fixed argument (the request, read
//! from the whole argument object) and result (the response), and
//! `"method"` / `"route"` in its record.
//!
//! Every check that can be made on the syntax is made here, with an error
//! at the offending tokens that says what to write instead.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Pat, ReturnType, Type};

use crate::types::{descriptor, json_string};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Query,
    Mutation,
    Action,
    HttpAction,
}

impl Kind {
    /// The attribute's name, for messages.
    fn as_str(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Action => "action",
            Kind::HttpAction => "http_action",
        }
    }

    /// The metadata's `kind`.
    fn meta_kind(self) -> &'static str {
        match self {
            Kind::HttpAction => "httpAction",
            k => k.as_str(),
        }
    }

    fn variant(self) -> Ident {
        Ident::new(
            match self {
                Kind::Query => "Query",
                Kind::Mutation => "Mutation",
                Kind::Action => "Action",
                Kind::HttpAction => "HttpAction",
            },
            Span::call_site(),
        )
    }
}

struct Options {
    name: Option<LitStr>,
    internal: bool,
    method: Option<LitStr>,
    route: Option<LitStr>,
}

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn check_method(lit: &LitStr) -> syn::Result<()> {
    let v = lit.value();
    if METHODS.contains(&v.as_str()) {
        return Ok(());
    }
    let hint = if METHODS.contains(&v.to_ascii_uppercase().as_str()) {
        format!(" (write \"{}\")", v.to_ascii_uppercase())
    } else {
        String::new()
    };
    Err(syn::Error::new(
        lit.span(),
        format!("unknown HTTP method \"{v}\"{hint}: expected one of GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    ))
}

fn check_route(lit: &LitStr) -> syn::Result<()> {
    let v = lit.value();
    let problem = if !v.starts_with('/') {
        Some("must start with `/`")
    } else if v.contains("//") {
        Some("must not contain `//`")
    } else if v.contains(['?', '#']) {
        Some("is a path: no `?` query or `#` fragment")
    } else if !v.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be printable ASCII without spaces (percent-encode other characters)")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(syn::Error::new(
            lit.span(),
            format!("the route {p}, e.g. \"/webhook\" (or \"/files/\" for every path under /files/)"),
        )),
    }
}

fn parse_options(kind: Kind, attr: TokenStream) -> syn::Result<Options> {
    let mut opts = Options {
        name: None,
        internal: false,
        method: None,
        route: None,
    };
    // The options if there are some, else the attribute itself.
    let attr_span = if attr.is_empty() {
        Span::call_site()
    } else {
        attr.span()
    };
    let parser = syn::meta::parser(|meta| {
        if kind == Kind::HttpAction {
            let slot = if meta.path.is_ident("method") {
                &mut opts.method
            } else if meta.path.is_ident("route") {
                &mut opts.route
            } else {
                let what = meta
                    .path
                    .get_ident()
                    .map_or_else(|| "this".to_string(), |i| format!("`{i}`"));
                return Err(meta.error(format!(
                    "unknown option {what} for #[http_action]: expected `method = \"POST\"` and `route = \"/path\"`"
                )));
            };
            if slot.is_some() {
                return Err(meta.error(format!(
                    "`{}` is given twice",
                    meta.path.get_ident().map(ToString::to_string).unwrap_or_default()
                )));
            }
            let lit: LitStr = meta.value()?.parse()?;
            if meta.path.is_ident("method") {
                check_method(&lit)?;
            } else {
                check_route(&lit)?;
            }
            *slot = Some(lit);
            Ok(())
        } else if meta.path.is_ident("name") {
            if opts.name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            let lit: LitStr = meta.value()?.parse()?;
            let v = lit.value();
            let valid = !v.is_empty()
                && v.len() <= 64
                && !v.starts_with(|c: char| c.is_ascii_digit())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(syn::Error::new(
                    lit.span(),
                    "a function name must be an identifier: letters, digits and `_`, not starting with a digit",
                ));
            }
            opts.name = Some(lit);
            Ok(())
        } else if meta.path.is_ident("internal") {
            if opts.internal {
                return Err(meta.error("`internal` is given twice"));
            }
            opts.internal = true;
            Ok(())
        } else {
            let what = meta
                .path
                .get_ident()
                .map_or_else(|| "this".to_string(), |i| format!("`{i}`"));
            Err(meta.error(format!(
                "unknown option {what} for #[{}]: expected `name = \"...\"` or `internal`",
                kind.as_str()
            )))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    if kind == Kind::HttpAction && (opts.method.is_none() || opts.route.is_none()) {
        let missing = if opts.method.is_none() { "method" } else { "route" };
        return Err(syn::Error::new(
            attr_span,
            format!(
                "#[http_action] needs a `{missing}`: write #[http_action(method = \"POST\", route = \"/webhook\")]"
            ),
        ));
    }
    Ok(opts)
}

/// What the generated code passes for one parameter.
enum Param {
    /// A context parameter (`Database`, `ActionCtx`, ...): created by the SDK.
    Context(String, Type),
    /// An HTTP action's request: the whole argument object.
    Request(Type),
    /// A client argument: decoded from the argument object by name.
    Arg { name: String, ty: Type },
}

/// The last segment of a path type, if `ty` is one without generics.
fn plain_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            last.arguments.is_none().then(|| last.ident.to_string())
        }
        Type::Group(g) => plain_name(&g.elem),
        Type::Paren(p) => plain_name(&p.elem),
        _ => None,
    }
}

/// The usual parameter name for a context type, for messages.
fn suggested_name(ty: &str) -> &'static str {
    match ty {
        "Database" => "db",
        "ActionCtx" => "ctx",
        "Scheduler" => "scheduler",
        "Auth" => "auth",
        _ => "storage",
    }
}

const CONTEXT_TYPES: [&str; 5] = ["Database", "ActionCtx", "Scheduler", "Storage", "Auth"];

fn check_context(kind: Kind, name: &str, ty: &Type) -> syn::Result<()> {
    match (kind, name) {
        (Kind::Action | Kind::HttpAction, "Database") => Err(syn::Error::new(
            ty.span(),
            "actions cannot use the database directly: take `ctx: ActionCtx` and call \
             `ctx.run_query(...)` / `ctx.run_mutation(...)`, or make this a #[query] or #[mutation]",
        )),
        (Kind::Query, "Scheduler") => Err(syn::Error::new(
            ty.span(),
            "queries cannot schedule functions (they only read): take `scheduler: Scheduler` in a \
             #[mutation] or an #[action]",
        )),
        (Kind::Query | Kind::Mutation, "ActionCtx") => Err(syn::Error::new(
            ty.span(),
            format!(
                "`ActionCtx` is only available in #[action] functions; a {} reads{} the database \
                 through a `db: Database` parameter",
                kind.as_str(),
                if kind == Kind::Mutation { " and writes" } else { "" }
            ),
        )),
        _ => Ok(()),
    }
}

fn classify(kind: Kind, arg: &FnArg) -> syn::Result<Param> {
    let pat_type = match arg {
        FnArg::Receiver(r) => {
            return Err(syn::Error::new(
                r.span(),
                format!(
                    "a #[{}] cannot be a method: `self` has no meaning to a Convex function; \
                     make it a free function",
                    kind.as_str()
                ),
            ))
        }
        FnArg::Typed(t) => t,
    };
    let ty = (*pat_type.ty).clone();
    if let Type::Reference(r) = &ty {
        if let Some(name) = plain_name(&r.elem).filter(|n| CONTEXT_TYPES.contains(&n.as_str())) {
            return Err(syn::Error::new(
                ty.span(),
                format!(
                    "take `{name}` by value (it is a small copyable handle): `{}: {name}`",
                    suggested_name(&name)
                ),
            ));
        }
        if plain_name(&r.elem).as_deref() == Some("HttpRequest") && kind == Kind::HttpAction {
            return Err(syn::Error::new(
                ty.span(),
                "take the request by value: `req: HttpRequest`",
            ));
        }
    }
    let type_name = plain_name(&ty);
    if let Some(name) = type_name.as_ref().filter(|n| CONTEXT_TYPES.contains(&n.as_str())) {
        check_context(kind, name, &ty)?;
        return match &*pat_type.pat {
            Pat::Ident(_) | Pat::Wild(_) => Ok(Param::Context(name.clone(), ty)),
            other => Err(syn::Error::new(
                other.span(),
                format!(
                    "use a plain name for the context parameter, e.g. `{}`",
                    suggested_name(name)
                ),
            )),
        };
    }
    if kind == Kind::HttpAction {
        if type_name.as_deref() != Some("HttpRequest") {
            return Err(syn::Error::new(
                arg.span(),
                "an #[http_action] has no client arguments: it takes the request (`req: HttpRequest`) \
                 and, optionally, `ctx: ActionCtx`, `scheduler: Scheduler`, `storage: Storage` or `auth: Auth`",
            ));
        }
        return match &*pat_type.pat {
            Pat::Ident(_) | Pat::Wild(_) => Ok(Param::Request(ty)),
            other => Err(syn::Error::new(
                other.span(),
                "use a plain name for the request, e.g. `req`",
            )),
        };
    }
    if type_name.as_deref() == Some("HttpRequest") {
        return Err(syn::Error::new(
            ty.span(),
            format!(
                "`HttpRequest` is the parameter of an #[http_action]; a #[{}] gets its arguments by name",
                kind.as_str()
            ),
        ));
    }
    let name = match &*pat_type.pat {
        // usePaginatedQuery sends its options as `paginationOpts`, whatever
        // the parameter is called here.
        Pat::Ident(_) if type_name.as_deref() == Some("PaginationOpts") => "paginationOpts".to_string(),
        Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
            let s = p.ident.to_string();
            s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
        }
        Pat::Wild(w) => {
            return Err(syn::Error::new(
                w.span(),
                "an argument needs a name: the client passes arguments by name (`{ \"name\": value }`)",
            ))
        }
        other => {
            return Err(syn::Error::new(
                other.span(),
                "use a plain name for a Convex function argument (no patterns): the name is the field \
                 the client passes, e.g. `user: User` instead of `User { name, .. }: User`",
            ))
        }
    };
    match &ty {
        Type::Reference(r) => Err(syn::Error::new(
            r.span(),
            "arguments are owned values decoded from the request: use `String` instead of `&str`, \
             `Vec<T>` instead of `&[T]`",
        )),
        Type::ImplTrait(t) => Err(syn::Error::new(
            t.span(),
            "argument types must be concrete (not `impl Trait`)",
        )),
        _ => Ok(Param::Arg { name, ty }),
    }
}

pub(crate) fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(kind, attr, item.clone()) {
        Ok(ts) => ts,
        // Keep the item so that its own errors and uses still resolve.
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#err #item)
        }
    }
}

fn try_expand(kind: Kind, attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let opts = parse_options(kind, attr)?;
    let func: ItemFn = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(f)) => f,
        Ok(other) => {
            return Err(syn::Error::new(
                first_token_span(&other),
                format!(
                    "#[{}] can only be used on a function, e.g. `async fn name(db: Database, arg: String) -> Result<T, ConvexError>`",
                    kind.as_str()
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    let sig = &func.sig;
    if let Some(c) = &sig.constness {
        return Err(syn::Error::new(
            c.span(),
            format!("a #[{}] cannot be a `const fn`", kind.as_str()),
        ));
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        return Err(syn::Error::new(
            u.span(),
            format!("a #[{}] cannot be `unsafe`", kind.as_str()),
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(syn::Error::new(
            abi.span(),
            "remove the `extern` ABI: the macro generates the export",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!(
                "a #[{}] cannot be generic: the host calls it with concrete, serialized arguments; \
                 use concrete types (or `Value` for anything)",
                kind.as_str()
            ),
        ));
    }
    if let Some(v) = &sig.variadic {
        return Err(syn::Error::new(v.span(), "variadic functions are not supported"));
    }

    let params = sig
        .inputs
        .iter()
        .map(|a| classify(kind, a))
        .collect::<syn::Result<Vec<_>>>()?;
    // Each context type and the request at most once.
    for (i, (input, p)) in sig.inputs.iter().zip(&params).enumerate() {
        let earlier = |same: &dyn Fn(&Param) -> bool| params[..i].iter().any(same);
        let message = match p {
            Param::Context(name, _) if earlier(&|q| matches!(q, Param::Context(n, _) if n == name)) => {
                format!("only one `{name}` parameter is allowed")
            }
            Param::Request(_) if earlier(&|q| matches!(q, Param::Request(_))) => {
                "only one `HttpRequest` parameter is allowed".to_string()
            }
            _ => continue,
        };
        return Err(syn::Error::new(input.span(), message));
    }
    if kind == Kind::HttpAction && matches!(sig.output, ReturnType::Default) {
        return Err(syn::Error::new(
            sig.ident.span(),
            "an #[http_action] must return `HttpResponse` or `Result<HttpResponse, ConvexError>`",
        ));
    }

    let ident = &sig.ident;
    let rust_name = {
        let s = ident.to_string();
        s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
    };
    let convex_name = opts.name.as_ref().map_or_else(|| rust_name.clone(), LitStr::value);
    let vis = &func.vis;
    let export_ident = format_ident!("__convex_export_{}", rust_name);
    let meta_ident = format_ident!("__convex_meta_{}", rust_name);
    let meta_const = format_ident!("__CONVEX_FN_{}", rust_name);
    let kind_variant = kind.variant();
    let kind_str = kind.meta_kind();
    let method = opts.method.as_ref().map(LitStr::value).unwrap_or_default();
    let route = opts.route.as_ref().map(LitStr::value).unwrap_or_default();
    let visibility = if opts.internal { "internal" } else { "public" };
    let public = !opts.internal;

    // Argument decoding, spanned at each type so type errors point there.
    let mut lets = Vec::new();
    let mut call_args = Vec::new();
    let mut arg_descriptors = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let tmp = format_ident!("__convex_arg{}", i);
        match p {
            Param::Context(_, ty) => lets.push(quote_spanned! {ty.span()=>
                let #tmp: #ty = <#ty as ::convex_sdk::__private::Context>::__convex_new(
                    ::convex_sdk::__private::Kind::#kind_variant,
                );
            }),
            Param::Request(ty) => lets.push(quote_spanned! {ty.span()=>
                let #tmp: #ty = __convex_args.request()?;
            }),
            Param::Arg { name, ty } => {
                lets.push(quote_spanned! {ty.span()=>
                    let #tmp: #ty = __convex_args.take::<#ty>(#name)?;
                });
                arg_descriptors.push(format!(r#"{{"name":{},"type":{}}}"#, json_string(name), descriptor(ty)));
            }
        }
        call_args.push(tmp);
    }
    let mut args_json = format!("[{}]", arg_descriptors.join(","));
    let (mut returns_json, ret_span) = match &sig.output {
        ReturnType::Default => (crate::types::simple("null"), sig.ident.span()),
        ReturnType::Type(_, ty) => (descriptor(ty), ty.span()),
    };
    if kind == Kind::HttpAction {
        args_json = crate::types::HTTP_REQUEST_ARGS.to_string();
        returns_json = crate::types::HTTP_RESPONSE.to_string();
    }
    let call = if sig.asyncness.is_some() {
        quote!(::convex_sdk::__private::block_on(#ident(#(#call_args),*)))
    } else {
        quote!(#ident(#(#call_args),*))
    };
    let convert = if kind == Kind::HttpAction {
        quote_spanned! {ret_span=> ::convex_sdk::__private::http_output(__convex_ret) }
    } else {
        quote_spanned! {ret_span=>
            (&mut ::convex_sdk::__private::Out(::core::option::Option::Some(__convex_ret))).__convex_output_must_be_serializable()
        }
    };

    Ok(quote! {
        #func

        #[doc(hidden)]
        #[allow(non_snake_case, dead_code, unused_mut, unused_variables, clippy::all)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = concat!("cvx:", module_path!(), "::", #rust_name)))]
        extern "C" fn #export_ident(args_len: i32) -> i32 {
            ::convex_sdk::__private::run_function(
                ::convex_sdk::__private::Kind::#kind_variant,
                args_len,
                |mut __convex_args: ::convex_sdk::__private::Args| {
                    #[allow(unused_imports)]
                    use ::convex_sdk::__private::{OutPlain as _, OutResult as _};
                    #(#lets)*
                    let __convex_ret = #call;
                    #convert
                },
            )
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #meta_const: ::convex_sdk::__private::FnMeta = ::convex_sdk::__private::FnMeta {
            kind: #kind_str,
            visibility: #visibility,
            name: #convex_name,
            module_path: module_path!(),
            export: concat!("cvx:", module_path!(), "::", #rust_name),
            method: #method,
            route: #route,
            args: #args_json,
            returns: #returns_json,
            file: file!(),
            line: line!(),
        };

        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(link_section = "cvx.fn"))]
        #[used]
        static #meta_ident: [u8; ::convex_sdk::__private::fn_meta_len(&#meta_const)] =
            ::convex_sdk::__private::fn_meta_record(&#meta_const);

        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        impl ::convex_sdk::ConvexFunction for #ident {
            const PATH: &'static str = {
                const BYTES: [u8; ::convex_sdk::__private::path_len(module_path!(), #convex_name)] =
                    ::convex_sdk::__private::path_bytes(module_path!(), #convex_name);
                ::convex_sdk::__private::path_str(&BYTES)
            };
            const KIND: ::convex_sdk::FunctionKind = ::convex_sdk::FunctionKind::#kind_variant;
            const PUBLIC: bool = #public;
            const EXPORT: extern "C" fn(i32) -> i32 = #export_ident;
            const METADATA: &'static [u8] = &#meta_ident;
        }
    })
}

/// The span of an item's first token (its keyword or attribute).
fn first_token_span(item: &syn::Item) -> Span {
    let tokens = quote!(#item);
    tokens.into_iter().next().map_or_else(Span::call_site, |t| t.span())
}
