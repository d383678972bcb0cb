//! Where an OpenAI-compatible server is and how it is shown: its URL (never
//! with credentials in anything printed, logged or stored) and its key.

/// An API key: shown as `***` by `Debug`, never serialised.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(key: String) -> Self {
        Secret(key)
    }
    /// The key itself: for the request's header and for masking it in what a server sends back.
    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where requests go.
#[derive(Clone)]
pub struct Endpoint {
    /// Up to and including `/v1`, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
}

impl Endpoint {
    /// The server at `base_url` (see [`BackendConfig::from_env`](super::BackendConfig::from_env)
    /// for `OPENAI_BASE_URL`), its key `api_key` or `OPENAI_API_KEY`; `None` without a base URL.
    pub fn from_env(base_url: Option<String>, model: String, api_key: Option<String>) -> Option<Self> {
        let base_url = base_url.filter(|u| !u.is_empty())?;
        let api_key = api_key.or_else(|| std::env::var("OPENAI_API_KEY").ok()).filter(|k| !k.is_empty()).map(Secret);
        Some(Endpoint { base_url: base_url.trim_end_matches('/').to_string(), model, api_key })
    }

    /// The base URL as it may be shown, logged or stored: without a user,
    /// password or query string (`http://user:secret@host/v1?key=k` becomes
    /// `http://host/v1`), which may carry credentials.
    pub fn display_url(&self) -> String {
        redact_url(&self.base_url)
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.display_url())
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// `url` without userinfo and query string.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let path = if path.is_empty() { String::new() } else { format!("/{path}") };
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}
