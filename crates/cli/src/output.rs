//! What commands print on standard output. Nothing here ever prints a secret: reports hold
//! none.

use std::io::Write;

use jiff::Timestamp;
use rotator_core::engine::{Integration, Outcome, Report};
use rotator_core::Failure;
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
            Outcome::WouldRotate { reason } => reason.clone(),
            Outcome::Failed(failure) => failure.to_string(),
        };
        let _ = writeln!(
            out,
            "{:width$}  {:12}  {detail}",
            report.integration,
            report.outcome.name()
        );
        if report.refresh_regenerated {
            let _ = writeln!(
                out,
                "{:width$}  {:12}  refresh token regenerated; new one expires {}",
                "",
                "",
                when(report.refresh_expires_at)
            );
        }
        for warning in &report.warnings {
            let _ = writeln!(out, "{:width$}  {:12}  warning: {warning}", "", "");
        }
    }
    let failed = reports.iter().filter(|r| r.is_failure()).count();
    let _ = writeln!(
        out,
        "{} integrations: {} fresh, {} rotated, {} failed",
        reports.len(),
        reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fresh))
            .count(),
        reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Rotated))
            .count(),
        failed
    );
}

/// One integration's line in `status`.
#[derive(Serialize)]
struct StatusRow {
    integration: String,
    health: &'static str,
    access_expires_at: Option<Timestamp>,
    refresh_expires_at: Option<Timestamp>,
    refresh_token_at: String,
    access_token_at: Vec<String>,
    escrow_waiting: bool,
    detail: Option<String>,
}

fn health(report: &Report) -> &'static str {
    if report.escrow_waiting {
        return "escrow waiting";
    }
    match &report.outcome {
        Outcome::Failed(Failure::NeedsBootstrap { .. }) => "needs bootstrap",
        Outcome::Failed(_) => "error",
        Outcome::WouldRotate { .. } => "access due",
        _ if report.refresh_due => "refresh due",
        _ => "ok",
    }
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
            health: health(report),
            access_expires_at: report.access_expires_at,
            refresh_expires_at: report.refresh_expires_at,
            refresh_token_at: integration.refresh_token.label(),
            access_token_at: integration.access_token.iter().map(|l| l.label()).collect(),
            escrow_waiting: report.escrow_waiting,
            detail: match &report.outcome {
                Outcome::Failed(failure) => Some(failure.to_string()),
                Outcome::WouldRotate { reason } => Some(reason.clone()),
                _ => None,
            },
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
        "REFRESH TOKEN AT",
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
                r.refresh_token_at.clone(),
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
    for row in rows.iter().filter(|r| r.detail.is_some()) {
        writeln!(
            out,
            "{}: {}",
            row.integration,
            row.detail.as_deref().unwrap_or_default()
        )?;
    }
    Ok(())
}
