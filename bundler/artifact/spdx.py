"""The same archive inventory as an SPDX 2.3 JSON document (``bundler sbom --format spdx``).

One package for the archive (``primaryPackagePurpose: ARCHIVE``) that ``CONTAINS`` one
package per component, ``DEPENDS_ON`` edges from conda ``depends`` and
``Requires-Dist``, purls as external references.  A licence that is not an SPDX
expression is ``NOASSERTION`` with the declared names in ``licenseComments``; nothing
is concluded (``licenseConcluded`` is always ``NOASSERTION``).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

from bundler import __version__
from bundler.artifact.sbom import PROVIDED_BY_SPARK, Component, Inventory

NOASSERTION = "NOASSERTION"


def _created() -> str:
    """Now, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds' convention)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    seconds = int(epoch) if epoch.isdigit() else int(time.time())
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _spdx_id(prefix: str, text: str) -> str:
    return f"SPDXRef-{prefix}-" + re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def _package(c: Component, spdx_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": c.name,
        "versionInfo": c.version,
        "supplier": NOASSERTION,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": c.purl,
            }
        ],
    }
    if c.sha256:
        data["checksums"] = [{"algorithm": "SHA256", "checksumValue": c.sha256}]
    if c.license is not None and c.license.expression is not None:
        data["licenseDeclared"] = c.license.expression
    elif c.license is not None:
        data["licenseComments"] = f"declared ({c.license.source}): {c.license.describe()}"
    return data


def _archive_package(inventory: Inventory) -> dict[str, Any]:
    manifest = inventory.manifest
    facts = [
        f"variant {manifest.variant}" if manifest.variant else "",
        f"platform {manifest.platform}" if manifest.platform else "",
        f"{manifest.content} archive",
    ]
    spark = ", ".join(f"{p.name}@{p.version}" for p in inventory.provided_by_spark)
    if spark:
        facts.append(f"{PROVIDED_BY_SPARK}: {spark} (left out; Spark provides them)")
    return {
        "SPDXID": "SPDXRef-Archive",
        "name": inventory.name,
        "supplier": NOASSERTION,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "ARCHIVE",
        "checksums": [{"algorithm": "SHA256", "checksumValue": inventory.sha256}],
        "comment": "; ".join(f for f in facts if f),
    }


def spdx(inventory: Inventory) -> dict[str, Any]:
    """The SPDX 2.3 document of ``content``."""
    ids: dict[str, str] = {}
    for c in inventory.components:
        spdx_id = _spdx_id(c.manager, f"{c.name}-{c.version}")
        while spdx_id in ids.values():
            spdx_id += "-1"
        ids[c.purl] = spdx_id
    relationships = [
        _relation("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Archive"),
        *(_relation("SPDXRef-Archive", "CONTAINS", ids[c.purl]) for c in inventory.components),
    ]
    for ref, deps in inventory.graph().items():
        relationships += [_relation(ids[ref], "DEPENDS_ON", ids[d]) for d in deps]
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:bundler:spdx:{inventory.sha256}")
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": inventory.name,
        "documentNamespace": f"https://spdx.org/spdxdocs/{inventory.name}-{namespace}",
        "creationInfo": {"created": _created(), "creators": [f"Tool: bundler-{__version__}"]},
        "packages": [
            _archive_package(inventory),
            *(_package(c, ids[c.purl]) for c in inventory.components),
        ],
        "relationships": relationships,
    }


def _relation(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}
