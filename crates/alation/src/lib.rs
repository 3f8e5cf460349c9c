//! Client for Alation's token API (refresh and API access tokens)
