//! What commands print on standard output. Nothing here ever prints a secret: reports hold
//! none.

use std::io::Write;

use jiff::Timestamp;
use rotator_core::engine::{Integration, Outcome, Report};
use serde::Serialize;

use crate::cli::OutputFormat;

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.round(jiff::Unit::Second).map_or(t, |r| r).to_string(),
    )
}

/// One line per integration after `run`.
pub fn print_run(reports: &[Report]) {
    let width = reports
        .iter()
        .map(|r| r.integration.len())
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for report in reports {
        let detail = match &report.outcome {
            Outcome::Fresh => format!("access token expires {}", when(report.access_expires_at)),
            Outcome::Rotated => format!(
                "new access token expires {}, written to {} destination(s)",
                when(report.access_expires_at),
                report.destinations.len()
            ),
            Outcome::WouldRotate { reason } | Outcome::NotReached { reason } => reason.clone(),
            Outcome::Failed(failure) => failure.to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:width$}  {:12}  {detail}",
            report.integration,
            report.outcome.name()
        );
        if let Some(slot) = report.regenerated {
            let expires = match slot {
                rotator_core::Slot::Standby => report.standby_expires_at,
                _ => report.refresh_expires_at,
            };
            let _ = writeln!(
                out,
                "{:width$}  {:12}  {slot} refresh token regenerated; new one expires {}",
                "",
                "",
                when(expires)
            );
        }
        if report.escrow_recovered {
            let _ = writeln!(
                out,
                "{:width$}  {:12}  a refresh token kept in escrow was stored",
                "", ""
            );
        }
        for warning in &report.warnings {
            let _ = writeln!(out, "{:width$}  {:12}  warning: {warning}", "", "");
        }
    }
    let count = |name: &str| reports.iter().filter(|r| r.outcome.name() == name).count();
    let mut summary = format!(
        "{} integrations: {} fresh, {} rotated, {} failed",
        reports.len(),
        count("fresh"),
        count("rotated"),
        count("failed")
    );
    if count("not-reached") > 0 {
        summary.push_str(&format!(", {} not reached", count("not-reached")));
    }
    if count("would-rotate") > 0 {
        summary.push_str(&format!(", {} would rotate", count("would-rotate")));
    }
    let _ = writeln!(out, "{summary}");
}

/// One integration's line in `status`.
#[derive(Serialize)]
struct StatusRow {
    integration: String,
    health: &'static str,
    credential: &'static str,
    access_expires_at: Option<Timestamp>,
    refresh_expires_at: Option<Timestamp>,
    standby_expires_at: Option<Timestamp>,
    state_at: String,
    access_token_at: Vec<String>,
    escrow_waiting: bool,
    degraded_since: Option<Timestamp>,
    detail: Option<String>,
    warnings: Vec<String>,
}

/// What a person should know beyond the health word.
fn detail(report: &Report) -> Option<String> {
    match &report.outcome {
        Outcome::Failed(failure) => return Some(failure.to_string()),
        Outcome::WouldRotate { reason } | Outcome::NotReached { reason } => {
            return Some(reason.clone())
        }
        _ => {}
    }
    report.degraded.as_ref().map(|degraded| {
        let left = report
            .refresh_expires_at
            .map(|t| {
                let days = t.duration_since(jiff::Timestamp::now()).as_hours() / 24;
                format!(
                    "{days} days left to bootstrap again (the remaining token expires {})",
                    when(Some(t))
                )
            })
            .unwrap_or_default();
        format!(
            "degraded since {}: {}; {left}; run `alation-rotator bootstrap {} --force`",
            when(Some(degraded.since)),
            degraded.reason,
            report.integration
        )
    })
}

/// `status` as a table or JSON.
pub fn print_status(
    integrations: &[Integration],
    reports: &[Report],
    format: OutputFormat,
) -> anyhow::Result<()> {
    let rows: Vec<StatusRow> = integrations
        .iter()
        .zip(reports)
        .map(|(integration, report)| StatusRow {
            integration: integration.name.clone(),
            health: report.health().name(),
            credential: report.credential.name(),
            access_expires_at: report.access_expires_at,
            refresh_expires_at: report.refresh_expires_at,
            standby_expires_at: report.standby_expires_at,
            state_at: integration.state.label(),
            access_token_at: integration.access_token.iter().map(|l| l.label()).collect(),
            escrow_waiting: report.escrow_waiting,
            degraded_since: report.degraded.as_ref().map(|d| d.since),
            detail: detail(report),
            warnings: report.warnings.clone(),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    let header = [
        "INTEGRATION",
        "HEALTH",
        "ACCESS EXPIRES",
        "REFRESH EXPIRES",
        "STATE AT",
        "ACCESS TOKEN AT",
    ];
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.integration.clone(),
                r.health.to_owned(),
                when(r.access_expires_at),
                when(r.refresh_expires_at),
                r.state_at.clone(),
                r.access_token_at.join(", "),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &table {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    for row in &rows {
        if let Some(detail) = &row.detail {
            writeln!(out, "{}: {detail}", row.integration)?;
        }
        for warning in &row.warnings {
            writeln!(out, "{}: warning: {warning}", row.integration)?;
        }
    }
    Ok(())
}
