//! `#[query]`, `#[mutation]`, `#[action]`.
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
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Action => "action",
        }
    }

    fn variant(self) -> Ident {
        Ident::new(
            match self {
                Kind::Query => "Query",
                Kind::Mutation => "Mutation",
                Kind::Action => "Action",
            },
            Span::call_site(),
        )
    }
}

struct Options {
    name: Option<LitStr>,
    internal: bool,
}

fn parse_options(kind: Kind, attr: TokenStream) -> syn::Result<Options> {
    let mut opts = Options {
        name: None,
        internal: false,
    };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
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
    Ok(opts)
}

/// What the generated code passes for one parameter.
enum Param {
    /// A context parameter (`Database`, `ActionCtx`): created by the SDK.
    Context(Type),
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

const CONTEXT_TYPES: [&str; 2] = ["Database", "ActionCtx"];

fn check_context(kind: Kind, name: &str, ty: &Type) -> syn::Result<()> {
    match (kind, name) {
        (Kind::Action, "Database") => Err(syn::Error::new(
            ty.span(),
            "actions cannot use the database directly: take `ctx: ActionCtx` and call \
             `ctx.run_query(...)` / `ctx.run_mutation(...)`, or make this a #[query] or #[mutation]",
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
                format!("take `{name}` by value (it is a small copyable handle): `db: {name}`"),
            ));
        }
    }
    if let Some(name) = plain_name(&ty).filter(|n| CONTEXT_TYPES.contains(&n.as_str())) {
        check_context(kind, &name, &ty)?;
        return match &*pat_type.pat {
            Pat::Ident(_) | Pat::Wild(_) => Ok(Param::Context(ty)),
            other => Err(syn::Error::new(
                other.span(),
                "use a plain name for the context parameter, e.g. `db`",
            )),
        };
    }
    let name = match &*pat_type.pat {
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
    let context_count = params.iter().filter(|p| matches!(p, Param::Context(_))).count();
    if context_count > 1 {
        let second = sig
            .inputs
            .iter()
            .zip(&params)
            .filter(|(_, p)| matches!(p, Param::Context(_)))
            .nth(1)
            .unwrap()
            .0;
        return Err(syn::Error::new(
            second.span(),
            "only one context parameter (`Database` or `ActionCtx`) is allowed",
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
    let kind_str = kind.as_str();
    let visibility = if opts.internal { "internal" } else { "public" };
    let public = !opts.internal;

    // Argument decoding, spanned at each type so type errors point there.
    let mut lets = Vec::new();
    let mut call_args = Vec::new();
    let mut arg_descriptors = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let tmp = format_ident!("__convex_arg{}", i);
        match p {
            Param::Context(ty) => lets.push(quote_spanned! {ty.span()=>
                let #tmp: #ty = <#ty as ::convex_sdk::__private::Context>::__convex_new(
                    ::convex_sdk::__private::Kind::#kind_variant,
                );
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
    let args_json = format!("[{}]", arg_descriptors.join(","));
    let (returns_json, ret_span) = match &sig.output {
        ReturnType::Default => (crate::types::simple("null"), sig.ident.span()),
        ReturnType::Type(_, ty) => (descriptor(ty), ty.span()),
    };
    let call = if sig.asyncness.is_some() {
        quote!(::convex_sdk::__private::block_on(#ident(#(#call_args),*)))
    } else {
        quote!(#ident(#(#call_args),*))
    };
    let convert = quote_spanned! {ret_span=>
        (&mut ::convex_sdk::__private::Out(::core::option::Option::Some(__convex_ret))).__convex_output_must_be_serializable()
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
