"""The kubelite CLI against a real apiserver + etcd: kubectl's verbs, output wording and exit codes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from kubelite import kubeconfig
from kubelite.api.resources import PODS
from kubelite.cli.main import main
from kubelite.client import SyncClient

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def kl(apiserver_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
       monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``kubelite ARGS`` in-process against the test's apiserver; returns (rc, stdout, stderr)."""
    cfg = tmp_path / "kubeconfig"
    kubeconfig.write(cfg, kubeconfig.render(apiserver_url))
    monkeypatch.setenv("KUBECONFIG", str(cfg))

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        rc = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return rc, out, err
    return run


@pytest.fixture
def client(apiserver_url: str) -> Iterator[SyncClient]:
    with SyncClient.from_url(apiserver_url) as c:
        yield c


def test_apply_three_way_and_get_outputs(kl: Run, client: SyncClient, tmp_path: Path) -> None:
    assert kl("apply", "-f", str(MANIFESTS / "pod.yaml")) == (0, "pod/hello created\n", "")
    assert kl("apply", "-f", str(MANIFESTS / "pod.yaml"))[1] == "pod/hello unchanged\n"
    # someone else labels the pod; the manifest drops a label it had and adds one
    assert kl("label", "pod", "hello", "owner=ops")[1] == "pod/hello labeled\n"
    doc = yaml.safe_load((MANIFESTS / "pod.yaml").read_text())
    doc["metadata"]["labels"] = {"tier": "web"}
    changed = tmp_path / "pod.yaml"
    changed.write_text(yaml.safe_dump(doc))
    assert kl("apply", "-f", str(changed))[1] == "pod/hello configured\n"
    labels = client.get(PODS, "hello", "default")["metadata"]["labels"]
    assert labels == {"tier": "web", "owner": "ops"}, "three-way merge: dropped label removed, foreign kept"

    rc, out, err = kl("get", "pods")
    lines = out.splitlines()
    assert lines, (rc, out, err)
    assert rc == 0 and lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["hello", "0/1", "Pending", "0"]
    assert lines[0].index("READY") == len("hello") + 3, "tabwriter padding 3"
    _, out, _ = kl("get", "pods", "-o", "wide")
    assert out.splitlines()[0].split()[5:7] == ["IP", "NODE"]
    _, out, _ = kl("get", "pods", "-A", "--show-labels")
    assert out.splitlines()[0].split()[0] == "NAMESPACE" and "owner=ops,tier=web" in out
    _, out, _ = kl("get", "pod", "hello", "-o", "yaml")
    obj = yaml.safe_load(out)
    assert obj["kind"] == "Pod" and "managedFields" not in obj["metadata"]
    _, out, _ = kl("get", "pods", "-o", "json")
    assert json.loads(out)["kind"] == "List"
    assert kl("get", "pods", "-l", "tier=web", "-o", "name")[1] == "pod/hello\n"
    assert kl("get", "pods", "-l", "tier=db") == (0, "", "No resources found in default namespace.\n")
    assert kl("get", "pods", "--field-selector", "metadata.name=hello", "-o", "name")[1] == "pod/hello\n"
    assert kl("get", "pod", "nope") == (1, "", 'Error from server (NotFound): pods "nope" not found\n')
    rc, _, err = kl("get", "pods", "-w", "--watch-timeout", "1")
    assert rc == 0


def test_bad_input_is_one_line(kl: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: [a\n")
    rc, out, err = kl("apply", "-f", str(bad))
    assert rc == 1 and err.startswith(f"error: error parsing {bad}: error converting YAML to JSON: yaml: line ")
    assert len(err.strip().splitlines()) == 1
    rc, _, err = kl("create", "-f", "-", stdin="apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    assert rc == 1 and 'no matches for kind "Service" in version "v1"' in err
    rc, _, err = kl("create", "-f", "-", stdin="kind: Pod\nmetadata: {name: s}\n")
    assert rc == 1 and "apiVersion not set" in err
    rc, _, err = kl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {}\n")
    assert rc == 1 and err.startswith('The Pod "Bad_Name" is invalid: ')
    assert kl("get", "widgets")[0] == 1
    assert kl("get", "pods", "--bogus")[0] == 1


def test_create_replace_edit_delete(kl: Run, client: SyncClient) -> None:
    assert kl("create", "-f", str(MANIFESTS))[1].splitlines() == [
        "deployment.apps/hello-deploy created", "pod/hello created", "replicaset.apps/hello-rs created"]
    rc, _, err = kl("create", "-f", str(MANIFESTS / "pod.yaml"))
    assert rc == 1 and err == (f'Error from server (AlreadyExists): error when creating "{MANIFESTS / "pod.yaml"}": '
                               'pods "hello" already exists\n')
    assert kl("label", "rs", "hello-rs", "a=b")[1] == "replicaset.apps/hello-rs labeled\n"
    assert kl("label", "rs", "hello-rs", "a=c")[2] == "error: 'a' already has a value (b), and --overwrite is false\n"
    assert kl("label", "rs", "hello-rs", "a=c", "--overwrite")[1] == "replicaset.apps/hello-rs labeled\n"
    assert kl("label", "rs", "hello-rs", "a-")[1] == "replicaset.apps/hello-rs unlabeled\n"
    assert kl("annotate", "deploy/hello-deploy", "note=hi")[1] == "deployment.apps/hello-deploy annotated\n"
    assert kl("patch", "deploy", "hello-deploy", "-p", '{"spec":{"replicas":3}}')[1] == \
        "deployment.apps/hello-deploy patched\n"
    assert kl("patch", "deploy", "hello-deploy", "--type", "merge", "-p", '{"spec":{"replicas":3}}')[1] == \
        "deployment.apps/hello-deploy patched (no change)\n"
    assert kl("patch", "deploy", "hello-deploy", "--type", "json", "-p",
              '[{"op":"replace","path":"/spec/replicas","value":1}]')[0] == 0
    c = client
    d = c.get("deployments", "hello-deploy", "default")
    assert d["spec"]["replicas"] == 1 and d["metadata"]["annotations"]["note"] == "hi"
    assert kl("replace", "-f", str(MANIFESTS / "deployment.yaml"))[1] == "deployment.apps/hello-deploy replaced\n"
    assert c.get("deployments", "hello-deploy", "default")["spec"]["replicas"] == 2
    rc, out, _ = kl("describe", "pod", "hello")
    lines = out.splitlines()
    assert rc == 0 and lines[0].split() == ["Name:", "hello"] and lines[1].split() == ["Namespace:", "default"]
    assert lines[0].index("hello") == lines[1].index("default"), "aligned like kubectl's tabwriter"
    at = lines.index("Containers:")
    assert lines[at + 1] == "  hello:" and lines[at + 2].split() == ["Image:", "busybox:1.35"]
    assert lines[-1].split() == ["Events:", "<none>"]
    rc, out, _ = kl("describe", "deploy", "hello-deploy")
    assert rc == 0 and "Pod Template:\n  Labels:  app=hello-deploy\n  Containers:\n   hello:\n" in out
    assert kl("describe", "rs", "hello-rs")[1].count("Replicas:") == 1
    # delete: by name (an unbound pod goes at once), by label, by file, --all
    assert kl("delete", "pod", "hello") == (0, 'pod "hello" deleted\n', "")
    assert kl("get", "pod", "hello")[0] == 1
    assert kl("delete", "rs", "-l", "app=hello-rs")[1] == 'replicaset.apps "hello-rs" deleted\n'
    rc, _, err = kl("delete", "-f", str(MANIFESTS / "replicaset.yaml"))
    assert rc == 1 and "NotFound" in err
    assert kl("delete", "-f", str(MANIFESTS / "replicaset.yaml"), "--ignore-not-found")[0] == 0
    assert kl("delete", "deploy", "--all")[1] == 'deployment.apps "hello-deploy" deleted\n'
    assert kl("delete", "pods", "--all") == (0, "", "No resources found in default namespace\n")
    assert kl("delete", "pods")[0] == 1


def test_server_side_apply_and_version(kl: Run) -> None:
    assert kl("apply", "--server-side", "-f", str(MANIFESTS / "deployment.yaml"))[1] == \
        "deployment.apps/hello-deploy serverside-applied\n"
    rc, out, _ = kl("version")
    assert rc == 0 and out.splitlines()[1].startswith("Server Version: v1.")


def test_server_warnings_are_printed(kl: Run) -> None:
    manifest = ("apiVersion: v1\nkind: Pod\nmetadata: {name: warned}\n"
                "spec: {bogusField: 1, containers: [{name: c, image: busybox:1.35}]}\n")
    rc, out, err = kl("create", "--validate=warn", "-f", "-", stdin=manifest)
    assert rc == 0 and out == "pod/warned created\n"
    assert err.startswith("Warning: ") and "bogusField" in err, err
    rc, _, err = kl("create", "-f", "-", stdin=manifest.replace("warned", "strict"))
    assert rc == 1 and "bogusField" in err and err.startswith("Error from server (BadRequest)"), err
