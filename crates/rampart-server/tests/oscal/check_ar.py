"""Loads an OSCAL assessment-results document with compliance-trestle and reports what it read.

Usage: check_ar.py FILE

compliance-trestle's own models (OSCAL 1.1.3) parse the file, `trestle validate` checks it in a
scratch trestle workspace (duplicate UUIDs, references, links), and what trestle read is printed
as JSON for the Rust test to compare with what it expects: nothing here is Rampart's code.
"""
import base64
import json
import pathlib
import subprocess
import sys
import tempfile

from trestle.oscal import OSCAL_VERSION
from trestle.oscal.assessment_results import AssessmentResults


def plain(x):
    """A constrained string or enum value of trestle's models as the text it holds."""
    while hasattr(x, "__root__"):
        x = x.__root__
    return getattr(x, "value", x)


def main() -> int:
    path = pathlib.Path(sys.argv[1])
    ar = AssessmentResults.oscal_read(path)
    resources = {str(r.uuid): r for r in (ar.back_matter.resources if ar.back_matter else [])}
    out = {
        "trestle_oscal_version": OSCAL_VERSION,
        "oscal_version": plain(ar.metadata.oscal_version),
        "import_ap": ar.import_ap.href,
        "results": [],
    }
    for r in ar.results:
        observations = {str(o.uuid): o for o in r.observations or []}
        findings = []
        for f in r.findings or []:
            related = sorted(
                next(p.value for p in observations[str(x.observation_uuid)].props if p.name == "check-id")
                for x in f.related_observations or []
            )
            findings.append([f.target.target_id, plain(f.target.status.state), related])
        attestation = None
        for a in r.attestations or []:
            for part in a.parts:
                for link in part.links or []:
                    res = resources[link.href.lstrip("#")]
                    attestation = base64.b64decode(res.base64.value).decode()
        evidence = sum(len(o.relevant_evidence or []) for o in observations.values())
        out["results"].append({
            "props": {p.name: p.value for p in r.props or []},
            "observations": len(observations),
            "evidence": evidence,
            "findings": findings,
            "risks": [[plain(k.status), str(k.deadline) if k.deadline else None] for k in r.risks or []],
            "reviewed": [c.control_id for s in r.reviewed_controls.control_selections for c in s.include_controls or []],
            "attestation_jws": attestation,
        })
    with tempfile.TemporaryDirectory() as root:
        trestle = str(pathlib.Path(sys.executable).parent / "trestle")
        subprocess.run([trestle, "init"], cwd=root, check=True, capture_output=True)
        model = pathlib.Path(root, "assessment-results", "ar")
        model.mkdir(parents=True)
        (model / "assessment-results.json").write_bytes(path.read_bytes())
        v = subprocess.run([trestle, "validate", "-t", "assessment-results", "-n", "ar"],
                           cwd=root, capture_output=True, text=True)
        out["validate"] = {"status": v.returncode, "output": (v.stdout + v.stderr).strip()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
