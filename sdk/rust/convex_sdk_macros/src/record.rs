//! A crate-level metadata record (`cvx.schema`, `cvx.auth`): one framed
//! record in a custom section, as docs/abi.md §4 frames them.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

/// `static <record>` in custom section `section`: the JSON's length as a
/// u32 little-endian, then the JSON; and `pub const <json_const>` holding
/// the JSON itself, for the fake host in tests. `what` names the record
/// in the items' docs.
pub(crate) fn framed(section: &str, record: &str, json_const: &str, what: &str, json: &str) -> TokenStream {
    let mut bytes = (json.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    let len = bytes.len();
    let bytes = Literal::byte_string(&bytes);
    let record = Ident::new(record, Span::call_site());
    let json_const = Ident::new(json_const, Span::call_site());
    let record_doc = format!("The `{section}` record of this crate ({what}).");
    let json_doc = format!("The `{section}` record's JSON ({what}).");
    quote! {
        #[doc = #record_doc]
        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        #[cfg_attr(target_arch = "wasm32", unsafe(link_section = #section))]
        #[used]
        static #record: [u8; #len] = *#bytes;

        #[doc = #json_doc]
        #[doc(hidden)]
        #[allow(dead_code)]
        pub const #json_const: &str = #json;
    }
}
