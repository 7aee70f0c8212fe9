"""docs/: every `(docs: ID)` cited in the project names a fact that exists, once, with a source."""
from __future__ import annotations

import subprocess

from tests.conftest import ROOT
from tests.docs_facts import CITATION, FACT_ID, facts, project_files


def test_every_fact_has_a_source() -> None:
    missing = [fact_id for fact_id, (_, body) in facts().items() if "\nSource:" not in body]
    assert missing == []


def test_each_fact_file_uses_its_own_prefix() -> None:
    prefixes = {"api-gateway.md": "APIGW", "lambda-esm.md": "ESM", "dynamodb.md": "DDB", "chalice.md": "CHALICE",
                "iam.md": "IAM", "local-backends.md": "LOCAL", "cloudformation.md": "CFN", "lambda.md": "LAMBDA",
                "cloudwatch.md": "CW", "pricing.md": "PRICE"}
    wrong = [(fact_id, path.name) for fact_id, (path, _) in facts().items()
             if prefixes.get(path.name) != fact_id.split("-")[0]]
    assert wrong == []


def test_every_cited_fact_exists() -> None:
    known = facts()
    dangling = []
    for path in project_files():
        for match in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
            # A citation may wrap onto a comment's next line: drop the comment marker there.
            for cited in (part.strip().lstrip("#").strip() for part in match.group(1).split(",")):
                if not FACT_ID.match(cited) or cited not in known:
                    dangling.append(f"{path.relative_to(ROOT)}: {cited}")
    assert dangling == []


# Citations of documents that are not in the repository (an earlier, private spec). Spelt in pieces
# so that this file does not match itself.
OUTSIDE_CITATIONS = ("shared" + "/spec", "../" + "shared", "spec" + " §", "esm" + " §")
NOT_THE_PROJECT = (".git", ".venv", "node_modules", "build")


def test_nothing_cites_documents_outside_the_repository() -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    found = []
    for name in filter(None, listed):
        top = name.split("/", 1)[0]
        if top in NOT_THE_PROJECT or top.startswith(".venv") or not (ROOT / name).is_file():
            continue
        text = (ROOT / name).read_bytes().decode("utf-8", errors="replace").lower()
        found += [f"{name}: {marker}" for marker in OUTSIDE_CITATIONS if marker in text]
    assert found == [], "cite a fact in docs/ instead, e.g. (docs: ESM-5)"
