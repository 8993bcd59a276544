//! `clearwatch users add|list`: dashboard users. Passwords come from a prompt (no echo) or
//! from standard input, never from the command line.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use clearwatch_model::case::UserRole;
use clearwatch_server::auth::hash_password;
use clearwatch_store::UserStore;

#[derive(Args, Debug)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a user; the password is asked for, or read as the first line of stdin.
    Add(AddArgs),
    /// List users: name, role, created, time zone, and `disabled` for disabled users.
    List,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub name: String,
    #[arg(long, value_parser = ["admin", "supervisor", "analyst", "rule_author", "auditor"])]
    pub role: String,
}

fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        if p != again {
            bail!("the passwords differ");
        }
        p
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    clearwatch_server::password::check(&password)?;
    Ok(password)
}

pub async fn run(db: &super::Db, args: UsersArgs) -> anyhow::Result<ExitCode> {
    let store = db.open().await?;
    match args.command {
        UsersCommand::Add(a) => {
            let role: UserRole = a.role.parse().map_err(anyhow::Error::msg)?;
            let name = clearwatch_server::auth::normalise_name(&a.name)
                .with_context(|| format!("user name {:?}", a.name))?;
            let name = name.as_str();
            let password = read_password()?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            store.add_user(name, role, &hash, "cli").await?;
            outln!("added {name} ({role})");
        }
        UsersCommand::List => {
            for u in store.users().await? {
                outln!(
                    "{}\t{}\t{}\t{}{}",
                    u.name,
                    u.role,
                    u.created_at,
                    u.time_zone,
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
