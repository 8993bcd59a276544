//! `clearwatch export`, `clearwatch keys generate` and `clearwatch evidence verify`: evidence
//! for regulators and how a receiver checks it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use clearwatch_export::{self as export, bundle, keys};
use clearwatch_rules::load::PackSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A signed ZIP: report, data files, manifest, signature, goAML XML when configured.
    Bundle,
    /// goAML 5.0.1 report XML.
    Goaml,
    /// CAMLMAC suspicious-transaction report packages (ZIP).
    Camlmac,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The alerts of the case.
    #[arg(required = true)]
    pub alert_ids: Vec<String>,
    /// Output file (for camlmac: a folder for the packages).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "bundle")]
    pub format: ExportFormat,
    /// Ed25519 signing key (PKCS#8 PEM); created on first use when absent.
    #[arg(long, env = "CLEARWATCH_EXPORT_KEY", default_value = keys::DEFAULT_KEY)]
    pub key: PathBuf,
    /// Reporting-entity configuration for goAML/CAMLMAC and the report's reporting
    /// institution block (see docs/evidence.md).
    #[arg(long, env = "CLEARWATCH_REPORTING_ENTITY")]
    pub entity: Option<PathBuf>,
    /// The analyst's narrative for the report.
    #[arg(long)]
    pub narrative: Option<String>,
    /// Who exports (default: $USER).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub user: String,
    /// IANA time zone the bundle's report.html shows times in (default: the zone of the
    /// dashboard user named by --user, else UTC).
    #[arg(long, value_parser = parse_time_zone)]
    pub time_zone: Option<export::Tz>,
    /// The language of report.html: en or zh-CN (rule titles and figure names from the
    /// rule pack's texts; summaries stay as stored).
    #[arg(long, default_value = "en", value_parser = parse_lang)]
    pub lang: clearwatch_model::Lang,
    /// CAMLMAC: the sequence number of the first file of the day (files are numbered on).
    #[arg(long, default_value_t = 1)]
    pub seq: u32,
}

#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Write a new Ed25519 key pair: PATH (private, 0600) and PATH.pub.
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    pub command: EvidenceCommand,
}

#[derive(Subcommand, Debug)]
pub enum EvidenceCommand {
    /// Check every hash and the signature of a bundle; exit 0 only when all hold.
    Verify {
        file: PathBuf,
        /// The exporter's public key (PEM). Without it, the key inside the bundle is used
        /// and its fingerprint printed for comparison.
        #[arg(long)]
        pubkey: Option<PathBuf>,
    },
}

pub async fn run_export(db: &super::Db, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = db.open().await?;
    let case = export::gather(&store, &args.alert_ids, args.narrative.clone()).await?;
    let now = chrono::Utc::now();
    match args.format {
        ExportFormat::Bundle => {
            let key = keys::load_or_create(&args.key)?;
            let entity = args
                .entity
                .as_ref()
                .map(export::entity::ReportingEntity::load)
                .transpose()?;
            let goaml = entity
                .as_ref()
                .map(|e| export::goaml::write_goaml(e, &case, now))
                .transpose()?;
            let time_zone = match args.time_zone {
                Some(tz) => Some(tz),
                None => export::user_time_zone(&store, &args.user).await?,
            };
            let rule_texts = clearwatch_rules::load::load_texts(&PackSource::resolve(&[]));
            let lang = args.lang;
            let texts = export::report::ReportTexts::for_case(
                &case,
                |id, english| rule_texts.title_or(lang, id, english).to_string(),
                |m| rule_texts.metric_name(lang, m).to_string(),
            );
            let extra = bundle::Options {
                goaml: goaml.as_deref(),
                entity: entity.as_ref(),
                time_zone,
                lang,
                texts: Some(&texts),
            };
            let manifest = bundle::write(&args.out, &case, &key, &args.user, now, &extra)?;
            export::record_export(&store, &args.user, &case, &manifest).await?;
            outln!(
                "wrote {} ({} files, {} transactions, {} accounts{}); signed with key {}",
                args.out.display(),
                manifest.files.len(),
                case.transactions.len(),
                case.accounts.len(),
                if goaml.is_some() {
                    ", goAML report"
                } else {
                    "; no goAML report: give --entity"
                },
                &manifest.public_key_sha256[..16]
            );
        }
        ExportFormat::Goaml => {
            let entity = entity(&args)?;
            let xml = export::goaml::write_goaml(&entity, &case, now)?;
            std::fs::write(&args.out, xml)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
            outln!("wrote {}", args.out.display());
        }
        ExportFormat::Camlmac => {
            let entity = entity(&args)?;
            std::fs::create_dir_all(&args.out)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
            // File names carry the reporting institution's date (China time), not UTC's.
            let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
            let date = now.with_timezone(&china).date_naive();
            let packages = export::camlmac::write_camlmac(&entity, &case, date, args.seq)?;
            for (name, bytes) in &packages {
                let path = args.out.join(name);
                std::fs::write(&path, bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                outln!("wrote {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_lang(s: &str) -> Result<clearwatch_model::Lang, String> {
    clearwatch_model::Lang::parse(s).ok_or_else(|| {
        format!(
            "{s:?} is not a language (valid: {})",
            clearwatch_model::Lang::tags()
        )
    })
}

fn parse_time_zone(s: &str) -> Result<export::Tz, String> {
    s.parse::<export::Tz>()
        .map_err(|_| format!("{s:?} is not an IANA time zone (e.g. Asia/Shanghai, UTC)"))
}

fn entity(args: &ExportArgs) -> anyhow::Result<export::entity::ReportingEntity> {
    let Some(path) = &args.entity else {
        anyhow::bail!(
            "--entity FILE (or CLEARWATCH_REPORTING_ENTITY) is needed for regulator reports: see docs/reporting-entity.example.yaml"
        );
    };
    Ok(export::entity::ReportingEntity::load(path)?)
}

pub fn run_keys(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let KeysCommand::Generate { out } = args.command;
    let public = keys::generate(&out)?;
    outln!(
        "wrote {} (private, 0600) and {} (public); fingerprint {}",
        out.display(),
        keys::public_path(&out).display(),
        keys::fingerprint(&public)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_evidence(args: EvidenceArgs) -> anyhow::Result<ExitCode> {
    let EvidenceCommand::Verify { file, pubkey } = args.command;
    let expected = pubkey.as_deref().map(keys::load_public).transpose()?;
    let v = bundle::verify(&file, expected.as_ref())?;
    for p in &v.problems {
        outln!("FAILED {p}");
    }
    if v.ok() {
        outln!(
            "OK {}: {} files match the manifest; the signature holds for key {}{}",
            file.display(),
            v.files_checked,
            v.key_sha256,
            if v.key_from_bundle {
                " (the key inside the bundle: compare this fingerprint with the exporter's published key, or pass --pubkey)"
            } else {
                ""
            }
        );
        Ok(ExitCode::SUCCESS)
    } else {
        outln!("{} problem(s) in {}", v.problems.len(), file.display());
        Ok(ExitCode::from(1))
    }
}
