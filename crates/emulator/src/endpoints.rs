//! The names of the endpoints the emulator serves, as they appear in their paths and in
//! [`Emulator::calls`](crate::Emulator::calls). One list, used by the router, the fault
//! matcher and tests.

/// `POST /integration/v1/createRefreshToken/`.
pub const CREATE_REFRESH_TOKEN: &str = "createRefreshToken";
/// `POST /integration/v1/validateRefreshToken/`.
pub const VALIDATE_REFRESH_TOKEN: &str = "validateRefreshToken";
/// `POST /integration/v1/regenRefreshToken/`.
pub const REGEN_REFRESH_TOKEN: &str = "regenRefreshToken";
/// `POST /integration/v1/createAPIAccessToken/`.
pub const CREATE_ACCESS_TOKEN: &str = "createAPIAccessToken";
/// `POST /integration/v1/validateAPIAccessToken/`.
pub const VALIDATE_ACCESS_TOKEN: &str = "validateAPIAccessToken";
/// `POST /integration/v1/revokeAPIAccessTokens/`.
pub const REVOKE_ACCESS_TOKENS: &str = "revokeAPIAccessTokens";
/// `POST /oauth/v2/token/`.
pub const OAUTH_TOKEN: &str = "oauthToken";
/// `POST /oauth/v2/introspect/`.
pub const OAUTH_INTROSPECT: &str = "oauthIntrospect";
/// `GET /integration/v1/user/`, the ordinary API that proves a token works.
pub const USER: &str = "user";

/// The six refresh-token endpoints under `/integration/v1/`.
pub const TOKEN_ENDPOINTS: [&str; 6] = [
    CREATE_REFRESH_TOKEN,
    VALIDATE_REFRESH_TOKEN,
    REGEN_REFRESH_TOKEN,
    CREATE_ACCESS_TOKEN,
    VALIDATE_ACCESS_TOKEN,
    REVOKE_ACCESS_TOKENS,
];

/// The OAuth 2.0 endpoints under `/oauth/v2/`.
pub const OAUTH_ENDPOINTS: [&str; 2] = [OAUTH_TOKEN, OAUTH_INTROSPECT];
