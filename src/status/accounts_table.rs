//! The accounts on the `/status` page: each account's token, grant, store and rollback
//! state, one row each (never a token or a hash).

use super::escape::escape;
use super::model::{AccountStatus, Status};
use std::fmt::Write as _;

/// The accounts table (empty without accounts).
pub fn accounts_table(status: &Status) -> String {
    if status.accounts.is_empty() {
        return String::new();
    }
    let mut table = String::from(
        "<div class=\"scroll\"><table id=\"accounts\">\n<tr><th>account</th><th>access token expires</th><th>authorization</th><th>token store</th><th>rollback</th><th>personal token</th><th>app tokens</th></tr>\n",
    );
    for account in &status.accounts {
        row(&mut table, account);
    }
    table.push_str("</table></div>\n");
    table
}

fn row(table: &mut String, account: &AccountStatus) {
    let name = escape(&account.name);
    let authorization = match &account.token.authorization_required {
        None => "in place".to_owned(),
        Some(required) => format!(
            "<span class=\"bad\">required</span> since {}: {}",
            escape(&required.refused_at),
            escape(&required.action)
        ),
    };
    let store = match &account.store_trouble {
        None => escape(&account.store),
        Some(trouble) => format!(
            "{} <span class=\"bad\">{}</span>",
            escape(&account.store),
            escape(trouble)
        ),
    };
    let rollback = match account.rollback {
        true => "<span class=\"bad\">ON</span>",
        false => "off",
    };
    let expires = account
        .token
        .expires_at
        .as_deref()
        .map_or("-".to_owned(), escape);
    let personal = if account.personal_token { "yes" } else { "no" };
    let _ = writeln!(
        table,
        "<tr><td>{name}</td><td>{expires}</td><td>{authorization}</td><td>{store}</td><td>{rollback}</td><td>{personal}</td><td>{}</td></tr>",
        account.app_tokens
    );
}
