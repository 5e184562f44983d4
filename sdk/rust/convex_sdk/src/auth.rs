//! Who is calling: [`Auth`] and the caller's [`UserIdentity`].
//!
//! Host call of ABI §3: `__convex_auth_identity` (request `{}`; response
//! the UserIdentity object, or `null` for an anonymous caller). The
//! providers whose tokens the server accepts are declared with
//! [`auth_config!`](crate::auth_config!) (the `cvx.auth` section) or, in a
//! TypeScript app, `convex/auth.config.ts`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ConvexError, ErrorCode};
use crate::rt::{Context, Kind};
use crate::sys::{self, imports};
use crate::value::Value;

/// The caller's authentication: who the user is, if the client sent a
/// valid token. Convex's `ctx.auth`.
///
/// Take it as a parameter of any kind of function (type `Auth`; it is not
/// a client argument) or get it with [`ActionCtx::auth`](crate::ActionCtx::auth).
///
/// ```
/// use convex_sdk::*;
///
/// #[mutation]
/// async fn send(db: Database, auth: Auth, body: String) -> Result<DocumentId, ConvexError> {
///     let user = auth
///         .user_identity()
///         .await?
///         .ok_or_else(|| ConvexError::new("Unauthenticated call to send"))?;
///     db.insert("messages", json!({ "author": user.token_identifier, "body": body })).await
/// }
///
/// # fn main() {
/// assert!(testing::call::<send>(json!({ "body": "hi" })).is_err());
/// testing::set_identity(UserIdentity::new("https://issuer.example", "user_1"));
/// testing::call::<send>(json!({ "body": "hi" })).unwrap();
/// assert_eq!(
///     testing::documents("messages")[0]["author"],
///     json!("https://issuer.example|user_1")
/// );
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Auth {
    _private: (),
}

impl Context for Auth {
    fn __convex_new(_kind: Kind) -> Auth {
        Auth { _private: () }
    }
}

impl Auth {
    #[cfg(not(target_arch = "wasm32"))]
    /// A handle for native tests, backed by [`crate::testing`]'s fake host
    /// (see [`testing::set_identity`](crate::testing::set_identity)).
    pub fn for_tests() -> Auth {
        Auth { _private: () }
    }

    /// The identity of the user calling, from the token the client sent
    /// (Convex's `ctx.auth.getUserIdentity()`), or `None` for an anonymous
    /// caller.
    ///
    /// The server has checked the token against the app's providers
    /// ([`auth_config!`](crate::auth_config!)): a call with a token it
    /// refuses never runs. Queries, mutations, actions and HTTP actions
    /// (from the request's `Authorization: Bearer` header) all see it, and
    /// functions an action runs by path see the action's caller; scheduled
    /// functions and crons run anonymously, as on Convex. Use
    /// [`token_identifier`](UserIdentity::token_identifier) as the key of
    /// a user's data: it is unique across providers.
    pub async fn user_identity(&self) -> Result<Option<UserIdentity>, ConvexError> {
        let body = sys::call_raw(imports::__convex_auth_identity, b"{}")?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| ConvexError::coded(ErrorCode::Internal, "host returned invalid UTF-8"))?;
        // Custom claims are plain JSON from the token; read the answer as
        // convex-encoded JSON like every other, or as plain JSON if a claim
        // has a `$` field that convex-encoded JSON does not allow.
        let value = Value::from_json(text).or_else(|_| crate::json::parse_plain(text))?;
        match value {
            Value::Null => Ok(None),
            v => UserIdentity::from_value(v).map(Some).map_err(|e| {
                ConvexError::coded(
                    ErrorCode::Internal,
                    format!("the host's user identity is malformed: {}", e.message()),
                )
            }),
        }
    }
}

/// The identity of an authenticated user: Convex's `UserIdentity`, the
/// claims of the token the client sent.
///
/// [`token_identifier`](Self::token_identifier), [`subject`](Self::subject)
/// and [`issuer`](Self::issuer) are always there; the standard OpenID
/// Connect claims are set when the token had them; any other claim of the
/// token is in [`claims`](Self::claims) under its own name (read it with
/// [`claim`](Self::claim)).
///
/// It converts to and from the object Convex's TypeScript `UserIdentity`
/// is (camelCase names: `tokenIdentifier`, `givenName`, `emailVerified`
/// …, then the custom claims), so a function can return it as is.
///
/// ```
/// use convex_sdk::*;
///
/// let mut user = UserIdentity::new("https://issuer.example", "user_1")
///     .with_claim("org", "acme");
/// user.email = Some("ada@example.com".into());
/// assert_eq!(user.token_identifier, "https://issuer.example|user_1");
/// assert_eq!(user.claim("org"), Some(&json!("acme")));
/// assert_eq!(
///     to_value(&user).unwrap(),
///     json!({
///         "tokenIdentifier": "https://issuer.example|user_1",
///         "subject": "user_1",
///         "issuer": "https://issuer.example",
///         "email": "ada@example.com",
///         "org": "acme",
///     })
/// );
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct UserIdentity {
    /// A stable, globally unique id of the user: `issuer|subject`. Key a
    /// user's data by it.
    pub token_identifier: String,
    /// The user's id at the provider (the token's `sub`).
    pub subject: String,
    /// The provider's domain (the token's `iss`).
    pub issuer: String,
    /// `name`
    pub name: Option<String>,
    /// `given_name`
    pub given_name: Option<String>,
    /// `family_name`
    pub family_name: Option<String>,
    /// `nickname`
    pub nickname: Option<String>,
    /// `preferred_username`
    pub preferred_username: Option<String>,
    /// `profile`: the URL of the user's profile page.
    pub profile_url: Option<String>,
    /// `picture`: the URL of the user's picture.
    pub picture_url: Option<String>,
    /// `email`
    pub email: Option<String>,
    /// `email_verified`
    pub email_verified: Option<bool>,
    /// `gender`
    pub gender: Option<String>,
    /// `birthdate`
    pub birthday: Option<String>,
    /// `zoneinfo`
    pub timezone: Option<String>,
    /// `locale`
    pub language: Option<String>,
    /// `phone_number`
    pub phone_number: Option<String>,
    /// `phone_number_verified`
    pub phone_number_verified: Option<bool>,
    /// `address`
    pub address: Option<String>,
    /// `updated_at`
    pub updated_at: Option<String>,
    /// The token's other claims (custom claims such as `"org_id"` or
    /// `"https://example.com/roles"`), by name, with any JSON value.
    pub claims: BTreeMap<String, Value>,
}

/// The standard string fields: (name in the identity object, field).
macro_rules! string_fields {
    ($m:ident) => {
        $m! {
            "name" => name,
            "givenName" => given_name,
            "familyName" => family_name,
            "nickname" => nickname,
            "preferredUsername" => preferred_username,
            "profileUrl" => profile_url,
            "pictureUrl" => picture_url,
            "email" => email,
            "gender" => gender,
            "birthday" => birthday,
            "timezone" => timezone,
            "language" => language,
            "phoneNumber" => phone_number,
            "address" => address,
            "updatedAt" => updated_at,
        }
    };
}

/// The names of the fields that are not custom claims.
const STANDARD: [&str; 20] = [
    "tokenIdentifier",
    "subject",
    "issuer",
    "name",
    "givenName",
    "familyName",
    "nickname",
    "preferredUsername",
    "profileUrl",
    "pictureUrl",
    "email",
    "emailVerified",
    "gender",
    "birthday",
    "timezone",
    "language",
    "phoneNumber",
    "phoneNumberVerified",
    "address",
    "updatedAt",
];

impl UserIdentity {
    /// An identity with just the required fields, `token_identifier` being
    /// `issuer|subject` (as the server makes it); set the others on the
    /// result. Mostly for tests, with
    /// [`testing::set_identity`](crate::testing::set_identity).
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> UserIdentity {
        let (issuer, subject) = (issuer.into(), subject.into());
        UserIdentity {
            token_identifier: format!("{issuer}|{subject}"),
            subject,
            issuer,
            name: None,
            given_name: None,
            family_name: None,
            nickname: None,
            preferred_username: None,
            profile_url: None,
            picture_url: None,
            email: None,
            email_verified: None,
            gender: None,
            birthday: None,
            timezone: None,
            language: None,
            phone_number: None,
            phone_number_verified: None,
            address: None,
            updated_at: None,
            claims: BTreeMap::new(),
        }
    }

    /// The custom claim `name` (one of [`claims`](Self::claims)), or
    /// `None`. The standard claims are the struct's fields.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// Adds (or replaces) the custom claim `name`.
    pub fn with_claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> UserIdentity {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// The identity as Convex's `UserIdentity` object: the fields that are
    /// set, by their camelCase names, then the custom claims (a custom
    /// claim named like a standard field is left out).
    pub fn to_value(&self) -> Value {
        let mut o: BTreeMap<String, Value> = self
            .claims
            .iter()
            .filter(|(k, _)| !STANDARD.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        o.insert("tokenIdentifier".into(), Value::from(&self.token_identifier));
        o.insert("subject".into(), Value::from(&self.subject));
        o.insert("issuer".into(), Value::from(&self.issuer));
        macro_rules! put {
            ($($key:literal => $field:ident,)*) => {
                $(if let Some(v) = &self.$field {
                    o.insert($key.into(), Value::from(v));
                })*
            };
        }
        string_fields!(put);
        if let Some(b) = self.email_verified {
            o.insert("emailVerified".into(), Value::Boolean(b));
        }
        if let Some(b) = self.phone_number_verified {
            o.insert("phoneNumberVerified".into(), Value::Boolean(b));
        }
        Value::Object(o)
    }

    /// Reads a `UserIdentity` object. A standard field of an unexpected
    /// type (`"emailVerified": "yes"`) is kept in `claims` rather than lost;
    /// `"true"` and `"false"` strings are read as booleans (some providers
    /// send `email_verified` as a string).
    pub(crate) fn from_value(v: Value) -> Result<UserIdentity, ConvexError> {
        let Value::Object(mut o) = v else {
            return Err(ConvexError::coded(
                ErrorCode::InvalidValue,
                format!("a user identity must be an object, not {}", v.type_name()),
            ));
        };
        let mut required = |key: &str| match o.remove(key) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(ConvexError::coded(
                ErrorCode::InvalidValue,
                format!("a user identity needs a string \"{key}\""),
            )),
        };
        let token_identifier = required("tokenIdentifier")?;
        let subject = required("subject")?;
        let issuer = required("issuer")?;
        let mut id = UserIdentity::new(issuer, subject);
        id.token_identifier = token_identifier;
        let mut take = |key: &str, want_bool: bool| -> Option<Value> {
            let v = o.remove(key)?;
            let ok = match &v {
                Value::Null => return None,
                Value::String(s) if want_bool => match s.as_str() {
                    "true" => return Some(Value::Boolean(true)),
                    "false" => return Some(Value::Boolean(false)),
                    _ => false,
                },
                Value::String(_) => !want_bool,
                Value::Boolean(_) => want_bool,
                _ => false,
            };
            if ok {
                Some(v)
            } else {
                id.claims.insert(key.to_string(), v);
                None
            }
        };
        let mut strings = BTreeMap::new();
        macro_rules! get {
            ($($key:literal => $field:ident,)*) => {
                $(if let Some(Value::String(s)) = take($key, false) {
                    strings.insert($key, s);
                })*
            };
        }
        string_fields!(get);
        let email_verified = take("emailVerified", true).and_then(|v| v.as_bool());
        let phone_number_verified = take("phoneNumberVerified", true).and_then(|v| v.as_bool());
        macro_rules! set {
            ($($key:literal => $field:ident,)*) => {
                $(id.$field = strings.remove($key);)*
            };
        }
        string_fields!(set);
        id.email_verified = email_verified;
        id.phone_number_verified = phone_number_verified;
        id.claims.extend(o);
        Ok(id)
    }
}

impl From<UserIdentity> for Value {
    fn from(id: UserIdentity) -> Value {
        id.to_value()
    }
}

impl From<&UserIdentity> for Value {
    fn from(id: &UserIdentity) -> Value {
        id.to_value()
    }
}

/// As Convex's `UserIdentity` object ([`UserIdentity::to_value`]).
impl Serialize for UserIdentity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// From Convex's `UserIdentity` object (`tokenIdentifier`, `subject` and
/// `issuer` required).
impl<'de> Deserialize<'de> for UserIdentity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UserIdentity, D::Error> {
        let v = Value::deserialize(d)?;
        UserIdentity::from_value(v).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    #[test]
    fn round_trip() {
        let v = json!({
            "tokenIdentifier": "https://i.example|u1",
            "subject": "u1",
            "issuer": "https://i.example",
            "name": "Ada Lovelace",
            "givenName": "Ada",
            "emailVerified": true,
            "phoneNumberVerified": "false",
            "updatedAt": "2024-01-01T00:00:00Z",
            "org": { "id": "acme", "roles": ["admin"] },
            "$weird": 1,
        });
        let id = UserIdentity::from_value(v.clone()).unwrap();
        assert_eq!(id.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(id.given_name.as_deref(), Some("Ada"));
        assert_eq!(id.email_verified, Some(true));
        assert_eq!(id.phone_number_verified, Some(false));
        assert_eq!(id.updated_at.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(id.claim("org").unwrap()["roles"][0], json!("admin"));
        assert_eq!(id.claim("$weird"), Some(&json!(1)));
        assert_eq!(id.claim("name"), None);
        assert_eq!(id.claims.len(), 2);
        let mut expected = v;
        expected
            .as_object_mut()
            .unwrap()
            .insert("phoneNumberVerified".into(), json!(false));
        assert_eq!(id.to_value(), expected);
        assert_eq!(crate::from_value::<UserIdentity>(id.to_value()).unwrap(), id);
    }

    #[test]
    fn wrong_types_and_missing_fields() {
        let id = UserIdentity::from_value(json!({
            "tokenIdentifier": "t", "subject": "s", "issuer": "i",
            "email": 5, "emailVerified": "yes", "nickname": null,
        }))
        .unwrap();
        assert_eq!((&id.email, id.email_verified, &id.nickname), (&None, None, &None));
        assert_eq!(id.claim("email"), Some(&json!(5)));
        assert_eq!(id.claim("emailVerified"), Some(&json!("yes")));
        assert_eq!(id.token_identifier, "t");
        let e = UserIdentity::from_value(json!({ "subject": "s", "issuer": "i" })).unwrap_err();
        assert!(e.message().contains("\"tokenIdentifier\""), "{e}");
        assert!(UserIdentity::from_value(json!("x")).is_err());
        // A custom claim named like a standard field does not shadow it.
        let id = UserIdentity::new("i", "s").with_claim("subject", "other");
        assert_eq!(id.to_value()["subject"], json!("s"));
    }
}
