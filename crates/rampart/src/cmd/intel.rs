//! `rampart intel …`: feeds, ingestion, lookups and statistics against the local store (the
//! SQLite file in the data directory, or PostgreSQL), without a running server.

use std::io::Read;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use rampart_feeds::ingest::{IngestReport, ingest, load_allowlists, load_decay_models, load_index};
use rampart_feeds::lookup::describe;
use rampart_intel::lookup::{
    Lookup, LookupAnswer, LookupMatch, MatchSummary, find, match_summary, observable_matches, query,
};
use rampart_intel::{Format, IocKind, Limits};
use rampart_store::{IntelFeed, NewIntelFeed, Store};
use serde_json::json;

use super::fleet::parse_duration;
use crate::cli::{
    AllowlistCommand, AttackCommand, DecayCommand, FeedsCommand, IntelCommand, StoreArgs,
};
use crate::exit;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn open(store: &StoreArgs) -> anyhow::Result<Store> {
    Ok(match &store.database_url {
        Some(url) => Store::open(url).await?,
        None => {
            std::fs::create_dir_all(&store.data_dir).with_context(|| {
                format!("cannot create data directory {}", store.data_dir.display())
            })?;
            Store::open_sqlite(&store.data_dir.join("rampart.db")).await?
        }
    })
}

/// Runs an intel command.
pub fn run(cmd: IntelCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cmd {
            IntelCommand::Feeds(cmd) => feeds(cmd).await,
            IntelCommand::Ingest {
                format,
                feed,
                reliability,
                files,
                json,
                store,
            } => ingest_files(format, feed, reliability, files, json, &store).await,
            IntelCommand::Sync {
                feeds,
                force,
                json,
                store,
            } => sync(feeds, force, json, &store).await,
            IntelCommand::Lookup {
                values,
                related,
                json,
                store,
            } => lookup(values, related, json, &store).await,
            IntelCommand::Match {
                file,
                format,
                include_allowlisted,
                store,
            } => match_file(&file, &format, include_allowlisted, &store).await,
            IntelCommand::Stats { json, store } => stats(json, &store).await,
            IntelCommand::Allowlist(cmd) => allowlist(cmd).await,
            IntelCommand::Decay(cmd) => decay(cmd).await,
            IntelCommand::Purge {
                retention,
                json,
                store,
            } => {
                let retention = parse_duration("--retention", &retention)?;
                let store = open(&store).await?;
                let (indicators, records) = store.intel_purge(now().saturating_sub(retention)).await?;
                store.close().await;
                if json {
                    println!(
                        "{}",
                        json!({"indicators": indicators, "records": records, "retention_secs": retention})
                    );
                } else {
                    eprintln!("purged {indicators} indicators and {records} source rows (expired more than {retention} s ago)");
                }
                Ok(ExitCode::from(exit::OK))
            }
            IntelCommand::Attack(AttackCommand::Import { files, store }) => {
                attack_import(files, &store).await
            }
            IntelCommand::Sighting {
                value,
                false_positive,
                source,
                note,
                json,
                store,
            } => {
                sighting(
                    &value,
                    false_positive,
                    &source,
                    note.as_deref(),
                    json,
                    &store,
                )
                .await
            }
            IntelCommand::Export {
                format,
                min_score,
                output,
                mode,
                store,
            } => export(&format, min_score, output, mode, &store).await,
        }
    })
}

fn check_format(name: &str) -> anyhow::Result<Format> {
    Format::from_str(name).map_err(|e| anyhow!("--format: {e}"))
}

async fn feeds(cmd: FeedsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FeedsCommand::Add {
            name,
            format,
            url,
            interval,
            reliability,
            tlp,
            terms,
            ttl,
            store,
        } => {
            let mut def = NewIntelFeed {
                name,
                format,
                url,
                interval_secs: parse_duration("--interval", &interval)?,
                reliability: i64::from(reliability),
                tlp,
                terms,
                ttl_secs: parse_duration("--ttl", &ttl)?,
            };
            rampart_intel::feeds::validate(&mut def).map_err(|e| match e.field {
                "name" => anyhow!("feed name {}", e.reason),
                field => anyhow!("--{field} {}", e.reason),
            })?;
            let store = open(&store).await?;
            let feed = store.intel_put_feed(&def, now()).await?;
            eprintln!(
                "feed {} ({}), reliability {}, every {} s",
                feed.name, feed.format, feed.reliability, feed.interval_secs
            );
            store.close().await;
            Ok(ExitCode::from(exit::OK))
        }
        FeedsCommand::List { json, store } => {
            let store = open(&store).await?;
            let feeds = store.intel_feeds().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&feeds)?);
            } else {
                println!(
                    "{:<20} {:<18} {:>5} {:>8} {:>10} {:>9}  LAST ERROR",
                    "NAME", "FORMAT", "REL", "INTERVAL", "RECORDS", "FAILURES"
                );
                for f in &feeds {
                    println!(
                        "{:<20} {:<18} {:>5} {:>7}s {:>10} {:>9}  {}",
                        f.name,
                        f.format,
                        f.reliability,
                        f.interval_secs,
                        f.last_records.map_or("-".into(), |n| n.to_string()),
                        f.failures,
                        f.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            store.close().await;
            Ok(ExitCode::from(exit::OK))
        }
        FeedsCommand::Remove { name, store } => {
            let store = open(&store).await?;
            let removed = store.intel_delete_feed(&name).await?;
            store.close().await;
            if !removed {
                bail!("no feed named {name:?}");
            }
            eprintln!("feed {name} removed");
            Ok(ExitCode::from(exit::OK))
        }
    }
}

async fn ingest_files(
    format: Option<String>,
    feed_name: Option<String>,
    reliability: u8,
    files: Vec<std::path::PathBuf>,
    json: bool,
    args: &StoreArgs,
) -> anyhow::Result<ExitCode> {
    if reliability > 100 {
        bail!("--reliability {reliability}: must be 0–100");
    }
    let store = open(args).await?;
    let existing = match &feed_name {
        Some(name) => store.intel_feed(name).await?,
        None => None,
    };
    let format = match (&format, &existing) {
        (Some(f), _) => check_format(f)?,
        (None, Some(feed)) => check_format(&feed.format)?,
        (None, None) => detect_file_format(&files)?,
    };
    let feed: IntelFeed = match existing {
        Some(f) => f,
        None => {
            let name = feed_name.unwrap_or_else(|| format!("import-{format}"));
            store
                .intel_put_feed(
                    &NewIntelFeed {
                        name,
                        format: format.as_str().to_owned(),
                        url: None,
                        interval_secs: 86_400,
                        reliability: i64::from(reliability),
                        tlp: "clear".into(),
                        terms: None,
                        ttl_secs: 30 * 86_400,
                    },
                    now(),
                )
                .await?
        }
    };
    let mut reports = Vec::new();
    let mut failed = false;
    for path in &files {
        let input: Box<dyn Read + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        };
        let shown = path.display().to_string();
        match ingest(&store, &feed, format, input, Limits::default(), now(), None).await {
            Ok(report) => {
                if !json {
                    print_report(&shown, &report);
                }
                reports.push(json!({"file": shown, "report": report}));
            }
            Err(e) => {
                failed = true;
                eprintln!("{shown}: {e}");
                reports.push(json!({"file": shown, "error": e.to_string()}));
            }
        }
    }
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(ExitCode::from(if failed { exit::USAGE } else { exit::OK }))
}

async fn sync(
    names: Vec<String>,
    force: bool,
    json: bool,
    args: &StoreArgs,
) -> anyhow::Result<ExitCode> {
    use rampart_feeds::sync::{FetchOptions, SyncOutcome, sync_due, sync_feed};
    let store = open(args).await?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let opts = FetchOptions::default();
    let at = now();
    let outcomes = if names.is_empty() {
        sync_due(&store, &client, at, force, &opts, None).await?
    } else {
        let mut out = Vec::new();
        for name in &names {
            let feed = store
                .intel_feed(name)
                .await?
                .ok_or_else(|| anyhow!("--feed {name:?}: no such feed"))?;
            out.push((
                feed.name.clone(),
                sync_feed(&store, &client, &feed, at, &opts, None).await?,
            ));
        }
        out
    };
    store.close().await;
    let failed = outcomes
        .iter()
        .any(|(_, o)| matches!(o, SyncOutcome::Failed { .. }));
    if json {
        let list: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(n, o)| json!({"feed": n, "result": o}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if outcomes.is_empty() {
        eprintln!("no feed is due (use --force to fetch all)");
    } else {
        for (name, outcome) in &outcomes {
            match outcome {
                SyncOutcome::NotModified => eprintln!("{name}: not modified"),
                SyncOutcome::Ingested { report, bytes } => {
                    print_report(&format!("{name} ({bytes} bytes)"), report)
                }
                SyncOutcome::Failed { error } => eprintln!("{name}: FAILED: {error}"),
            }
        }
    }
    Ok(ExitCode::from(if failed {
        exit::FAILURES
    } else {
        exit::OK
    }))
}

/// The format of the first file, sniffed from its start, said on stderr; or why it cannot be
/// told, with the candidates.
fn detect_file_format(files: &[std::path::PathBuf]) -> anyhow::Result<Format> {
    use rampart_intel::parse::detect::DETECT_BYTES;
    use rampart_intel::parse::{Detected, detect_format};
    let Some(path) = files.first().filter(|p| p.as_os_str() != "-") else {
        bail!("--format is required for standard input (or --feed naming a defined feed)");
    };
    let mut head = Vec::with_capacity(DETECT_BYTES);
    std::fs::File::open(path)
        .and_then(|f| f.take(DETECT_BYTES as u64).read_to_end(&mut head))
        .with_context(|| format!("cannot open {}", path.display()))?;
    match detect_format(&head) {
        Detected::Format(format, why) => {
            eprintln!(
                "{}: detected format {format} ({why}); --format chooses another",
                path.display()
            );
            Ok(format)
        }
        Detected::Undecided { reason, candidates } => {
            let names: Vec<&str> = candidates.iter().map(|f| f.as_str()).collect();
            if names.is_empty() {
                bail!("{}: cannot tell the format: {reason}", path.display());
            }
            bail!(
                "{}: cannot tell the format: {reason}; pass --format, one of: {}",
                path.display(),
                names.join(", ")
            )
        }
    }
}

fn print_report(file: &str, report: &IngestReport) {
    let p = &report.parse;
    let s = &report.stored;
    eprintln!(
        "{file}: {} records, {} indicators ({} new, {} refreshed), {} new observations, {} rejected",
        p.records,
        p.indicators,
        s.new_indicators,
        s.updated_indicators,
        s.new_observations,
        p.problems
    );
    for note in &p.notes {
        eprintln!("{file}: note: {note}");
    }
    if let Some(why) = &report.no_indicator {
        eprintln!("{file}: no indicator: {why}");
    }
    for problem in &p.problem_samples {
        eprintln!("{file}:{problem}");
    }
    if p.problems > p.problem_samples.len() as u64 {
        eprintln!(
            "{file}: … and {} more rejected rows",
            p.problems - p.problem_samples.len() as u64
        );
    }
}

/// `intel match`: looks each line of a file (or stdin) up in the index built from the store;
/// exits with FAILURES when nothing matched.
async fn match_file(
    path: &std::path::Path,
    format: &str,
    include_allowlisted: bool,
    args: &StoreArgs,
) -> anyhow::Result<ExitCode> {
    use std::io::BufRead;
    let json = match format {
        "json" => true,
        "text" => false,
        other => bail!("--format {other:?}: text or json"),
    };
    let store = open(args).await?;
    let at = now();
    let allow = load_allowlists(&store).await?;
    let decay = load_decay_models(&store).await?;
    let index = load_index(&store, at, &allow, &decay).await?;
    store.close().await;
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ))
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut lines, mut matched, mut invalid) = (0u64, 0u64, 0u64);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), n + 1))?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        lines += 1;
        let Ok(found) = observable_matches(&index, text, include_allowlisted) else {
            invalid += 1;
            continue;
        };
        for (m, ioc) in found {
            matched += 1;
            let summary = match_summary(&index, &allow, &m, &ioc);
            use std::io::Write as _;
            if json {
                /// One match as `intel match --json` prints it: the line, then the match.
                #[derive(serde::Serialize)]
                struct Line<'a> {
                    line: usize,
                    observable: &'a str,
                    #[serde(flatten)]
                    summary: &'a MatchSummary,
                }
                let line = Line {
                    line: n + 1,
                    observable: text,
                    summary: &summary,
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            } else {
                writeln!(
                    out,
                    "{}:{}: {} {:?} {} {} score {}{}",
                    path.display(),
                    n + 1,
                    text,
                    m.how,
                    ioc.kind,
                    ioc.value,
                    summary.score.unwrap_or(0),
                    summary
                        .allowlisted
                        .as_ref()
                        .map(|a| format!(" allowlisted by {}", a.list))
                        .unwrap_or_default()
                )?;
            }
        }
    }
    std::io::Write::flush(&mut out)?;
    eprintln!("{lines} observables, {matched} matches, {invalid} not indicators");
    Ok(ExitCode::from(if matched > 0 {
        exit::OK
    } else {
        exit::FAILURES
    }))
}

/// A Unix time as a UTC date, or `?`.
fn date(t: Option<i64>) -> String {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|| "?".to_owned())
}

/// What an analyst acts on, under a lookup's first line: threat type, family, status, how
/// many sources, the dates, and how the score came about.
fn analyst_lines(f: &LookupMatch) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_owned());
    let sources = f.source_count;
    let mut lines = vec![
        format!(
            "threat type {} · family {} · status {} · {sources} source{}",
            text(&f.threat_type),
            text(&f.family),
            text(&f.status),
            if sources == 1 { "" } else { "s" }
        ),
        format!(
            "first seen {} · last seen {} · expires {}",
            date(f.first_seen),
            date(f.last_seen),
            date(f.expires_at)
        ),
    ];
    if let Some(e) = &f.score_explained {
        let from = e.base_from.as_ref();
        let confidence = match (
            from.and_then(|b| b.confidence),
            from.and_then(|b| b.confidence_assumed),
        ) {
            (Some(c), _) => c.to_string(),
            (None, Some(c)) => format!("{c} assumed"),
            (None, None) => "?".to_owned(),
        };
        let t = &e.terms;
        let model = match t.model.lifetime_days {
            Some(days) => format!("lifetime {days} days, speed {:?}", t.model.speed),
            None => "never decays".to_owned(),
        };
        lines.push(format!(
            "score {} = base {} ({}: reliability {} × confidence {confidence}) × age factor {:?} \
             ({:?} days old; {} model: {model}) + {} for {} sighting(s) − {} for {} false positive(s)",
            t.score,
            t.base,
            from.map_or("?", |b| b.feed.as_str()),
            from.map_or_else(|| "?".to_owned(), |b| b.reliability.to_string()),
            t.age_factor,
            t.age_days,
            t.model_scope,
            t.sightings_bonus,
            t.sightings,
            t.false_positive_penalty,
            t.false_positives,
        ));
    }
    lines
}

async fn lookup(
    values: Vec<String>,
    related: bool,
    json: bool,
    args: &StoreArgs,
) -> anyhow::Result<ExitCode> {
    let store = open(args).await?;
    let at = now();
    let allow = load_allowlists(&store).await?;
    let decay = load_decay_models(&store).await?;
    let index = load_index(&store, at, &allow, &decay).await?;
    let mut out = Vec::new();
    let mut any_match = false;
    let mut any_invalid = false;
    for raw in &values {
        let found = match find(&index, &allow, raw) {
            Ok(found) => found,
            Err(error) => {
                any_invalid = true;
                if !json {
                    eprintln!("{raw}: {error}");
                }
                out.push(LookupAnswer::NotAnIndicator {
                    query: raw.clone(),
                    error,
                });
                continue;
            }
        };
        let answer = describe(&store, raw, found, related, &decay, at).await?;
        any_match |= !answer.matches.is_empty();
        if !json {
            print_lookup(raw, &answer);
        }
        out.push(LookupAnswer::Found(answer));
    }
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    // grep's convention: 0 a match, 1 none, 2 a value that is not an indicator.
    let code = if any_invalid {
        exit::USAGE
    } else if any_match {
        exit::OK
    } else {
        exit::FAILURES
    };
    Ok(ExitCode::from(code))
}

/// A lookup's human output: one line per match, then what an analyst acts on.
fn print_lookup(raw: &str, answer: &Lookup) {
    if answer.matches.is_empty() {
        println!("{raw}: no match ({} {})", answer.kind, answer.canonical);
    }
    for f in &answer.matches {
        let sources: Vec<String> = f
            .sources
            .iter()
            .map(|s| {
                let mut text = s.feed.clone();
                if let Some(r) = &s.source_ref {
                    text.push_str(&format!(" #{r}"));
                }
                if let Some(m) = s.malware.first() {
                    text.push_str(&format!(" {m}"));
                }
                text
            })
            .collect();
        let m = &f.summary;
        println!(
            "{raw}: {} {} {} (score {}{}) — {}",
            m.how.as_str(),
            m.indicator.kind,
            m.indicator.value,
            m.score.map_or_else(|| "?".to_owned(), |s| s.to_string()),
            match &m.allowlisted {
                Some(a) => format!(", allowlisted by {}: {}", a.list, a.entry),
                None => String::new(),
            },
            sources.join("; ")
        );
        for line in analyst_lines(f) {
            println!("    {line}");
        }
        if let Some(related) = &f.related {
            for r in &related.same_record {
                println!("    same source row: {r}");
            }
            for (family, v) in &related.same_family {
                println!(
                    "    family {family}: {} indicators{}",
                    v.total,
                    if v.capped { " (listing capped)" } else { "" }
                );
            }
        }
        for a in &f.attack {
            println!(
                "    ATT&CK {} {}{}",
                a.id,
                a.name.as_deref().unwrap_or("(not imported)"),
                if a.tactics.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", a.tactics.join(", "))
                }
            );
        }
    }
}

async fn export(
    format: &str,
    min_score: u8,
    output: Option<std::path::PathBuf>,
    mode: Option<u32>,
    args: &StoreArgs,
) -> anyhow::Result<ExitCode> {
    use rampart_feeds::export::export_all;
    use rampart_intel::export::ExportFormat;
    let format: ExportFormat = format
        .parse()
        .map_err(|e: String| anyhow!("--format: {e}"))?;
    if min_score > 100 {
        bail!("--min-score {min_score}: must be 0–100");
    }
    let store = open(args).await?;
    let at = now();
    let allow = load_allowlists(&store).await?;
    // Formatted in memory (the export holds every row anyway) and written in one step: a daemon
    // reading the file sees the old export or the new one, never half of one.
    let mut bytes = Vec::new();
    let decay = load_decay_models(&store).await?;
    let summary = export_all(&store, &allow, &decay, format, min_score, at, &mut bytes).await?;
    store.close().await;
    match &output {
        Some(path) => super::write_atomic_mode(path, &bytes, mode)?,
        None => {
            // A reader that stops early (`| head`) ends the process by SIGPIPE (see main).
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .context("cannot write the export")?;
        }
    }
    eprintln!("{} indicators exported", summary.written);
    for line in summary.left_out_lines() {
        eprintln!("left out: {line}");
    }
    Ok(ExitCode::from(exit::OK))
}

async fn decay(cmd: DecayCommand) -> anyhow::Result<ExitCode> {
    use rampart_intel::score::{DecayModel, Scope};
    match cmd {
        DecayCommand::List { json, store } => {
            let store = open(&store).await?;
            let models = load_decay_models(&store).await?;
            store.close().await;
            if json {
                let list: Vec<serde_json::Value> = models
                    .list()
                    .map(|(scope, model, set)| {
                        json!({
                            "scope": scope.to_string(),
                            "lifetime_days": model.lifetime_days,
                            "speed": model.speed,
                            "source": if set { "operator" } else { "builtin" },
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<32} {:<9} MODEL", "SCOPE", "SOURCE");
                for (scope, model, set) in models.list() {
                    println!(
                        "{:<32} {:<9} {model}",
                        scope.to_string(),
                        if set { "operator" } else { "builtin" }
                    );
                }
            }
        }
        DecayCommand::Set {
            scope,
            lifetime,
            speed,
            store,
        } => {
            let parsed: Scope = scope.parse().map_err(|e: String| anyhow!("{e}"))?;
            let lifetime_days = match lifetime.as_str() {
                "never" => None,
                days => Some(days.parse::<f64>().map_err(|_| {
                    anyhow!("--lifetime {days:?}: a number of days (30, 7.5) or `never`")
                })?),
            };
            let model = DecayModel {
                lifetime_days,
                speed,
            };
            model
                .validate()
                .map_err(|e| anyhow!("--lifetime/--speed: {e}"))?;
            let store = open(&store).await?;
            store
                .intel_put_decay_model(&rampart_store::IntelDecayRow {
                    scope: parsed.to_string(),
                    lifetime_days,
                    speed,
                })
                .await?;
            store.close().await;
            eprintln!("decay model {parsed}: {model}");
        }
        DecayCommand::Reset { scope, store } => {
            let parsed: Scope = scope.parse().map_err(|e: String| anyhow!("{e}"))?;
            let store = open(&store).await?;
            let removed = store.intel_delete_decay_model(&parsed.to_string()).await?;
            store.close().await;
            if !removed {
                bail!("no operator's decay model for {parsed}");
            }
            eprintln!("decay model {parsed}: built-in again");
        }
    }
    Ok(ExitCode::from(exit::OK))
}

async fn allowlist(cmd: AllowlistCommand) -> anyhow::Result<ExitCode> {
    use rampart_intel::allowlist::{
        AllowlistDef, Allowlists, MatchType, builtin_non_routable, from_warninglist,
    };
    let (def, args) = match cmd {
        AllowlistCommand::Add {
            name,
            match_type,
            mut entries,
            file,
            description,
            store,
        } => {
            let match_type: MatchType = match_type
                .parse()
                .map_err(|e: String| anyhow!("--type: {e}"))?;
            if let Some(path) = file {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                entries.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned),
                );
            }
            if entries.is_empty() {
                bail!("allowlist {name}: no entries (--entry or --file)");
            }
            (
                AllowlistDef {
                    name,
                    match_type,
                    entries,
                    description,
                },
                store,
            )
        }
        AllowlistCommand::Import { file, name, store } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let def = from_warninglist(&bytes, name.as_deref())
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            (def, store)
        }
        AllowlistCommand::List { json, store } => {
            let store = open(&store).await?;
            let lists = store.intel_allowlists().await?;
            store.close().await;
            let builtin = builtin_non_routable();
            if json {
                let mut all = vec![json!({
                    "name": builtin.name,
                    "match_type": "cidr",
                    "entries": builtin.entries,
                    "description": builtin.description,
                    "builtin": true,
                })];
                all.extend(lists.iter().map(|l| {
                    json!({
                        "name": l.name,
                        "match_type": l.match_type,
                        "entries": l.entries,
                        "description": l.description,
                        "builtin": false,
                    })
                }));
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(ExitCode::from(exit::OK));
            }
            println!(
                "{:<28} {:<10} {:>8}  DESCRIPTION",
                "NAME", "TYPE", "ENTRIES"
            );
            println!(
                "{:<28} {:<10} {:>8}  {}",
                builtin.name,
                "cidr",
                builtin.entries.len(),
                builtin.description.unwrap_or_default()
            );
            for l in lists {
                println!(
                    "{:<28} {:<10} {:>8}  {}",
                    l.name,
                    l.match_type,
                    l.entries.len(),
                    l.description.unwrap_or_default()
                );
            }
            return Ok(ExitCode::from(exit::OK));
        }
        AllowlistCommand::Remove { name, store } => {
            let store = open(&store).await?;
            let removed = store.intel_delete_allowlist(&name).await?;
            store.close().await;
            if !removed {
                bail!("no allowlist named {name:?}");
            }
            eprintln!("allowlist {name} removed");
            return Ok(ExitCode::from(exit::OK));
        }
    };
    // Validate every entry before storing anything.
    Allowlists::new(vec![def.clone()])?;
    let store = open(&args).await?;
    store
        .intel_put_allowlist(&rampart_store::IntelAllowlist {
            name: def.name.clone(),
            match_type: def.match_type.as_str().to_owned(),
            entries: def.entries.clone(),
            description: def.description.clone(),
            created_at: now(),
        })
        .await?;
    store.close().await;
    eprintln!(
        "allowlist {} ({}, {} entries)",
        def.name,
        def.match_type.as_str(),
        def.entries.len()
    );
    Ok(ExitCode::from(exit::OK))
}

async fn attack_import(
    files: Vec<std::path::PathBuf>,
    args: &StoreArgs,
) -> anyhow::Result<ExitCode> {
    let mut entries = Vec::new();
    for path in &files {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let found = rampart_intel::attack::parse_bundle(&bytes)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        entries.extend(found.into_iter().map(|e| (e.id, e.kind, e.name, e.tactics)));
    }
    let store = open(args).await?;
    let n = store.intel_put_attack(&entries, now()).await?;
    store.close().await;
    eprintln!("{n} ATT&CK entries imported from {} file(s)", files.len());
    Ok(ExitCode::from(exit::OK))
}

async fn sighting(
    value: &str,
    false_positive: bool,
    source: &str,
    note: Option<&str>,
    json: bool,
    args: &StoreArgs,
) -> anyhow::Result<ExitCode> {
    let ioc = query(value).map_err(|e| anyhow!("{value}: {e}"))?;
    let store = open(args).await?;
    let Some(ind) = store.intel_indicator(ioc.kind, &ioc.value).await? else {
        store.close().await;
        bail!("{} {} is not a known indicator", ioc.kind, ioc.value);
    };
    store
        .intel_add_sighting(ind.id, false_positive, source, note, now())
        .await?;
    let after = store.intel_indicator(ioc.kind, &ioc.value).await?;
    store.close().await;
    if json {
        println!(
            "{}",
            json!({
                "indicator": {"kind": ioc.kind, "value": ioc.value},
                "recorded": if false_positive { "false_positive" } else { "hit" },
                "sightings": after.as_ref().map(|a| a.sightings),
                "false_positives": after.as_ref().map(|a| a.false_positives),
            })
        );
        return Ok(ExitCode::from(exit::OK));
    }
    eprintln!(
        "{} recorded for {} {}",
        if false_positive {
            "false positive"
        } else {
            "sighting"
        },
        ioc.kind,
        ioc.value
    );
    Ok(ExitCode::from(exit::OK))
}

async fn stats(json: bool, args: &StoreArgs) -> anyhow::Result<ExitCode> {
    let store = open(args).await?;
    let counts = store.intel_counts(now()).await?;
    let feeds = store.intel_feeds().await?;
    store.close().await;
    /// Indicators of one kind, as `intel stats --json` prints them.
    #[derive(serde::Serialize)]
    struct KindCounts {
        kind: IocKind,
        live: i64,
        expired: i64,
    }
    let kinds: Vec<KindCounts> = counts
        .iter()
        .map(|&(kind, live, expired)| KindCounts {
            kind,
            live,
            expired,
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"kinds": kinds, "feeds": feeds}))?
        );
        return Ok(ExitCode::from(exit::OK));
    }
    let (live, expired) = counts
        .iter()
        .fold((0, 0), |(l, e), (_, a, b)| (l + a, e + b));
    println!(
        "{live} live indicators, {expired} expired (kept until purged), {} feeds",
        feeds.len()
    );
    for k in &kinds {
        println!(
            "  {:<18} {:>10} live {:>10} expired",
            k.kind.as_str(),
            k.live,
            k.expired
        );
    }
    for f in &feeds {
        let health = match (&f.last_error, f.last_success) {
            (Some(e), _) => format!("failing ({} in a row): {e}", f.failures),
            (None, Some(_)) => "ok".to_owned(),
            (None, None) => "never fetched".to_owned(),
        };
        println!("  feed {:<18} {:<18} {health}", f.name, f.format);
    }
    Ok(ExitCode::from(exit::OK))
}
