//! Reading a request path the way the API server lays out its URLs:
//! `/api/v1/namespaces/NS/pods/NAME/portforward`,
//! `/apis/apps/v1/deployments` and the discovery paths.

use super::kinds::Kind;

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/api/v1`, `/apis/apps/v1`.
    Resources {
        group: String,
        version: String,
    },
    /// A collection or one object of a served kind.
    Object(ObjectRoute),
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRoute {
    pub kind: &'static Kind,
    /// `None`: cluster-scoped, or every namespace.
    pub namespace: Option<String>,
    /// `None`: the collection.
    pub name: Option<String>,
    /// `portforward`, `status`...
    pub subresource: Option<String>,
}

/// Parses a path (without its query).
pub fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Route::Version,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Route::NotFound,
    };
    if rest.is_empty() {
        return Route::Resources {
            group: group.to_owned(),
            version: version.to_owned(),
        };
    }
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (Some(*ns), [&[*plural][..], tail].concat()),
        other => (None, other.to_vec()),
    };
    let Some(kind) = rest
        .first()
        .and_then(|p| Kind::by_plural(group, version, p))
    else {
        return Route::NotFound;
    };
    if rest.len() > 3 || (namespace.is_some() && !kind.namespaced) {
        return Route::NotFound;
    }
    Route::Object(ObjectRoute {
        kind,
        namespace: namespace.map(str::to_owned),
        name: rest.get(1).map(|s| (*s).to_owned()),
        subresource: rest.get(2).map(|s| (*s).to_owned()),
    })
}

/// The decoded query parameters.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &str) -> ObjectRoute {
        match route(path) {
            Route::Object(o) => o,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_are_read_like_the_api_server() {
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(route("/apis"), Route::Groups);
        assert_eq!(
            route("/apis/apps/v1"),
            Route::Resources {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        let pods = object("/api/v1/pods");
        assert_eq!((pods.kind.plural, pods.namespace), ("pods", None));
        let ns = object("/api/v1/namespaces/shop");
        assert_eq!(
            (ns.kind.plural, ns.name.as_deref()),
            ("namespaces", Some("shop"))
        );
        let pf = object("/api/v1/namespaces/shop/pods/web-1/portforward");
        assert_eq!(pf.namespace.as_deref(), Some("shop"));
        assert_eq!(pf.name.as_deref(), Some("web-1"));
        assert_eq!(pf.subresource.as_deref(), Some("portforward"));
        let ro = object("/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts");
        assert_eq!(ro.kind.kind, "Rollout");
        assert_eq!(
            route("/apis/apps/v1/namespaces/shop/widgets"),
            Route::NotFound
        );
        assert_eq!(route("/api/v1/namespaces/a/namespaces"), Route::NotFound);
    }

    #[test]
    fn queries_are_decoded() {
        assert_eq!(
            query_pairs("labelSelector=app%3Dweb%2Ctier%21%3Ddb&watch=1"),
            vec![
                ("labelSelector".to_owned(), "app=web,tier!=db".to_owned()),
                ("watch".to_owned(), "1".to_owned())
            ]
        );
    }
}
