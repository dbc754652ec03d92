//! `oms user add`: the operator creates a panel user from the command line.

use std::io::BufRead;

use anyhow::Context;
use clap::{Args, Subcommand};
use oms_store::clients;

use crate::DatabaseArgs;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a panel user; the password comes from OMS_USER_PASSWORD or the first line
    /// of standard input.
    Add(AddArgs),
}

#[derive(Args)]
pub struct AddArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The client's code.
    #[arg(long)]
    client: String,
    #[arg(long)]
    username: String,
    /// client_admin or client_support.
    #[arg(long)]
    role: String,
}

fn password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("OMS_USER_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Add(args) = command;
    let password = password()?;
    let store = crate::open(&args.database).await?;
    let client = clients::find_by_code(store.pool(), &args.client)
        .await?
        .with_context(|| format!("no client {}", args.client))?;
    let outcome = async {
        let user = oms_app::panel::users::validate(
            Some(&args.username),
            Some(&password),
            Some(&args.role),
        )?;
        oms_app::panel::users::create(&store, client.id, &user).await?;
        Ok::<_, oms_app::error::ApiError>(user)
    }
    .await;
    store.close().await;
    let user = outcome.map_err(|e| match e {
        oms_app::error::ApiError::Invalid { details, .. } => anyhow::anyhow!(
            "{}",
            details
                .iter()
                .map(|d| format!("{}: {}", d.field, d.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => anyhow::anyhow!("{other}"),
    })?;
    println!(
        "panel user {} ({}) created for client {}; sign in at /login",
        user.username,
        user.role.as_str(),
        client.code
    );
    Ok(())
}
