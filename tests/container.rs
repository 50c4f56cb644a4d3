//! The Dockerfile, read as text (no container engine is needed): pinned
//! base images, the OCI labels, a stripped build that knows its revision,
//! and a HEALTHCHECK through the binary's own subcommand on the exposed
//! metrics port.

use packet_service::config::SETTINGS;

const DOCKERFILE: &str = include_str!("../Dockerfile");

fn instructions(keyword: &str) -> Vec<&'static str> {
    DOCKERFILE
        .lines()
        .filter(|l| l.starts_with(&format!("{keyword} ")))
        .collect()
}

fn default_of(env: &str) -> &'static str {
    SETTINGS
        .iter()
        .find(|s| s.env == env)
        .and_then(|s| s.default)
        .unwrap_or_else(|| panic!("no default for {env}"))
}

#[test]
fn base_images_are_pinned_to_exact_tags() {
    let froms = instructions("FROM");
    assert_eq!(froms.len(), 2, "{froms:?}");
    for from in froms {
        let image = from.split_whitespace().nth(1).expect("image");
        let (_, tag) = image
            .split_once(':')
            .unwrap_or_else(|| panic!("untagged {image}"));
        let digits: Vec<&str> = tag
            .split(|c: char| !c.is_ascii_digit())
            .filter(|d| !d.is_empty())
            .collect();
        // A full x.y.z version or a dated build (bookworm-20250520).
        let exact = digits.len() >= 3 || digits.iter().any(|d| d.len() == 8);
        assert!(
            exact && !tag.contains("latest"),
            "{image} is not an exact tag"
        );
    }
    let runtime = instructions("FROM")[1]
        .split_whitespace()
        .nth(1)
        .expect("runtime");
    assert!(
        DOCKERFILE.contains(&format!("base.name=\"docker.io/library/{runtime}\"")),
        "the base.name label names the runtime image"
    );
}

#[test]
fn the_image_carries_the_oci_labels() {
    for label in [
        "title",
        "description",
        "licenses",
        "version",
        "revision",
        "created",
    ] {
        assert!(
            DOCKERFILE.contains(&format!("org.opencontainers.image.{label}=")),
            "no {label} label"
        );
    }
    assert!(DOCKERFILE.contains(&format!(
        "org.opencontainers.image.licenses=\"{}\"",
        env!("CARGO_PKG_LICENSE")
    )));
}

#[test]
fn the_binary_is_stripped_and_knows_its_revision() {
    assert!(DOCKERFILE.contains("CARGO_PROFILE_RELEASE_STRIP=symbols"));
    assert!(DOCKERFILE.contains("PACKET_SERVICE_REVISION=\"$REVISION\""));
}

#[test]
fn the_healthcheck_runs_the_subcommand_on_the_exposed_metrics_port() {
    // The instruction and its continuation lines.
    let start = DOCKERFILE.find("\nHEALTHCHECK ").expect("a HEALTHCHECK");
    let check = DOCKERFILE[start + 1..].split("\n\n").next().unwrap_or("");
    let check = check.split("\n#").next().unwrap_or("");
    assert!(
        check.contains("CMD [\"/usr/local/bin/packet-service\", \"healthcheck\"]"),
        "{check}"
    );
    let exposed = instructions("EXPOSE");
    let metrics_port = default_of("PACKET_METRICS_PORT");
    assert!(
        exposed
            .iter()
            .any(|e| e.split_whitespace().any(|p| p == metrics_port)),
        "{exposed:?} lacks {metrics_port}"
    );
}
