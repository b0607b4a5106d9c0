//! The request-rewrite step, pure: the app's request becomes the head sent upstream.
//! The target keeps its path and query byte for byte under the upstream's scheme and
//! authority; hop-by-hop headers, `Host` and the app's `Authorization` go (the route's
//! credential is added when sending), and several `cookie` fields become one.

use super::send::RequestHead;
use crate::headers::{join_cookies, strip_hop_by_hop};
use crate::slots::AppConnection;
use crate::upstream;
use http::header;
use http::uri::Authority;

/// Rewrites the parts of an accepted request, which came on `connection`, for
/// `authority`.
pub fn head(
    mut parts: http::request::Parts,
    authority: &Authority,
    connection: AppConnection,
) -> RequestHead {
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    parts.headers.remove(header::AUTHORIZATION);
    join_cookies(&mut parts.headers);
    RequestHead {
        uri: upstream::uri(authority, parts.uri.path_and_query()),
        method: parts.method,
        headers: parts.headers,
        connection,
    }
}
