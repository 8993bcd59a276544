//! The authorization table: every route with the roles allowed on it. The guard denies a
//! route missing from this table, and the router tests walk it for every role. The route
//! table of `docs/dashboard.md` is [`markdown_table`] (a test keeps the two the same).

use clearwatch_model::case::UserRole::{self, *};

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session needed (login, static assets).
    Public,
    /// A session with one of these roles.
    Roles(&'static [UserRole]),
}

#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    /// The router's path pattern.
    pub path: &'static str,
    pub access: Access,
}

const ALL: &[UserRole] = &[Admin, Supervisor, Analyst, RuleAuthor, Auditor];
/// The roles that work cases: the only ones a case may be assigned to.
pub const CASE_WORK: &[UserRole] = &[Analyst, Supervisor];
const DECIDE: &[UserRole] = &[Supervisor];
const AUDIT: &[UserRole] = &[Admin, Supervisor, Auditor];
const RULE_TOOLS: &[UserRole] = &[RuleAuthor, Supervisor, Admin];
const PUBLISH: &[UserRole] = &[RuleAuthor];
const EXPORT: &[UserRole] = &[Analyst, Supervisor, Auditor];
const ADMIN: &[UserRole] = &[Admin];

const fn r(method: &'static str, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
    }
}

pub const ROUTES: &[RouteSpec] = &[
    r("GET", "/login", Access::Public),
    r("POST", "/login", Access::Public),
    r("GET", "/static/{*path}", Access::Public),
    r("POST", "/logout", Access::Roles(ALL)),
    r("GET", "/", Access::Roles(ALL)),
    r("GET", "/alerts", Access::Roles(ALL)),
    r("POST", "/alerts/bulk", Access::Roles(CASE_WORK)),
    r("GET", "/alerts/{id}", Access::Roles(ALL)),
    r("POST", "/alerts/{id}/case", Access::Roles(CASE_WORK)),
    r("POST", "/alerts/{id}/notes", Access::Roles(CASE_WORK)),
    r("POST", "/alerts/{id}/request", Access::Roles(CASE_WORK)),
    r("GET", "/alerts/{id}/export", Access::Roles(EXPORT)),
    r("POST", "/approvals/{id}/decide", Access::Roles(DECIDE)),
    r("GET", "/accounts/{id}", Access::Roles(ALL)),
    r("GET", "/account", Access::Roles(ALL)),
    r("GET", "/flows", Access::Roles(ALL)),
    r("GET", "/cases", Access::Roles(ALL)),
    r("POST", "/cases/bulk", Access::Roles(CASE_WORK)),
    r("POST", "/cases/next", Access::Roles(CASE_WORK)),
    r("POST", "/cases/assign", Access::Roles(DECIDE)),
    r("GET", "/suppressions", Access::Roles(ALL)),
    r("POST", "/suppressions/{id}/lift", Access::Roles(DECIDE)),
    r("GET", "/lists", Access::Roles(ALL)),
    r("POST", "/lists", Access::Roles(DECIDE)),
    r("GET", "/lists/{name}", Access::Roles(ALL)),
    r("POST", "/lists/{name}/entries", Access::Roles(CASE_WORK)),
    r(
        "POST",
        "/lists/{name}/entries/{id}/remove",
        Access::Roles(DECIDE),
    ),
    r("GET", "/rules", Access::Roles(ALL)),
    r("GET", "/rules/new", Access::Roles(RULE_TOOLS)),
    r("POST", "/rules/new/lint", Access::Roles(RULE_TOOLS)),
    r("POST", "/rules/new/backtest", Access::Roles(RULE_TOOLS)),
    r("GET", "/rules/{id}", Access::Roles(ALL)),
    r("POST", "/rules/{id}/lint", Access::Roles(RULE_TOOLS)),
    r("POST", "/rules/{id}/backtest", Access::Roles(RULE_TOOLS)),
    r("POST", "/rules/{id}/publish", Access::Roles(PUBLISH)),
    r("GET", "/audit", Access::Roles(AUDIT)),
    r("GET", "/admin/users", Access::Roles(ADMIN)),
    r("POST", "/admin/users", Access::Roles(ADMIN)),
    r("POST", "/admin/users/{name}", Access::Roles(ADMIN)),
    r("POST", "/admin/users/{name}/password", Access::Roles(ADMIN)),
    r("GET", "/admin/stream", Access::Roles(ADMIN)),
    r("GET", "/profile", Access::Roles(ALL)),
    r("GET", "/password", Access::Roles(ALL)),
    r("POST", "/password", Access::Roles(ALL)),
    r("POST", "/profile", Access::Roles(ALL)),
    r("GET", "/api/openapi.json", Access::Roles(ALL)),
    r("GET", "/api/v1/alerts", Access::Roles(ALL)),
    r("GET", "/api/v1/alerts/{id}", Access::Roles(ALL)),
    r("GET", "/api/v1/cases", Access::Roles(ALL)),
    r("GET", "/api/v1/cases/{id}", Access::Roles(ALL)),
    r("GET", "/api/v1/suppressions", Access::Roles(ALL)),
    r("GET", "/api/v1/lists", Access::Roles(ALL)),
    r("GET", "/api/v1/lists/{name}", Access::Roles(ALL)),
    r("POST", "/api/v1/cases/{id}", Access::Roles(CASE_WORK)),
    r("GET", "/api/v1/accounts/{id}", Access::Roles(ALL)),
    r("GET", "/api/v1/rules", Access::Roles(ALL)),
    r("GET", "/api/v1/audit", Access::Roles(AUDIT)),
    r("GET", "/api/v1/users", Access::Roles(ADMIN)),
    r("POST", "/api/v1/users", Access::Roles(ADMIN)),
    r("POST", "/api/v1/users/{name}", Access::Roles(ADMIN)),
    r("GET", "/api/v1/stream", Access::Roles(ADMIN)),
];

/// The access rule of `(method, path pattern)`; `None` means not in the table (denied).
pub fn access(method: &str, path: &str) -> Option<Access> {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES
        .iter()
        .find(|s| s.method == method && s.path == path)
        .map(|s| s.access)
}

impl Access {
    pub fn allows(self, role: UserRole) -> bool {
        match self {
            Access::Public => true,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

/// The route table as `docs/dashboard.md` shows it: method, path pattern and who may use
/// it, in the order of [`ROUTES`].
pub fn markdown_table() -> String {
    let mut t = String::from("| method | path | roles |\n| --- | --- | --- |\n");
    for s in ROUTES {
        let who = match s.access {
            Access::Public => "anyone (no session)".to_string(),
            Access::Roles(roles) if roles == ALL => "every role".to_string(),
            Access::Roles(roles) => roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        t.push_str(&format!("| {} | `{}` | {} |\n", s.method, s.path, who));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- routes: begin (generated from crates/server/src/routes.rs) -->\n";
    const END: &str = "<!-- routes: end -->";

    /// The documented route table is the code's, row for row. `CLEARWATCH_UPDATE_DOCS=1`
    /// rewrites it.
    #[test]
    fn the_documented_route_table_is_the_route_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboard.md");
        let doc = std::fs::read_to_string(path).expect("docs/dashboard.md");
        let start = doc.find(BEGIN).expect("route table start marker") + BEGIN.len();
        let end = doc.find(END).expect("route table end marker");
        let want = markdown_table();
        if std::env::var_os("CLEARWATCH_UPDATE_DOCS").is_some() {
            let new = format!("{}{want}{}", &doc[..start], &doc[end..]);
            std::fs::write(path, new).expect("write docs/dashboard.md");
            return;
        }
        assert_eq!(
            &doc[start..end],
            want,
            "docs/dashboard.md's route table differs from ROUTES: rerun with CLEARWATCH_UPDATE_DOCS=1"
        );
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[..i]
                    .iter()
                    .any(|b| a.method == b.method && a.path == b.path),
                "{} {} twice",
                a.method,
                a.path
            );
        }
    }
}
