"""DescribeDBEngineVersions (moto has none): a catalogue of engine versions with their valid upgrade targets.

Each version lists as `ValidUpgradeTarget` every later version of its engine: the minor versions of its own major
(IsMajorVersionUpgrade false) and the versions of later majors (true), as AWS lists them for the engines the fleet
runs. A version outside the catalogue is unknown: DescribeDBEngineVersions returns nothing for it and the sandbox
does not judge upgrades from it. Sources: the API reference (DBEngineVersion, UpgradeTarget) and the RDS User Guide,
"Upgrading the PostgreSQL DB engine" / "Upgrading the MySQL DB engine" (major upgrades need the flag).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moto.core.responses import PaginatedResult

from sandbox.aws import errors
from sandbox.aws.upgrades import is_major_upgrade, major_version

if TYPE_CHECKING:
    from moto.rds.responses import RDSResponse

CATALOGUE: dict[str, tuple[str, ...]] = {
    "postgres": ("14.12", "14.13", "15.6", "15.7", "15.8", "16.3", "16.4", "16.6", "17.2"),
    "aurora-postgresql": ("14.11", "15.4", "15.6", "15.8", "16.1", "16.4", "16.6"),
    "mysql": ("5.7.44", "8.0.36", "8.0.39", "8.0.40", "8.4.3"),
    "aurora-mysql": ("8.0.mysql_aurora.3.05.2", "8.0.mysql_aurora.3.07.1"),
    "mariadb": ("10.6.18", "10.11.8", "10.11.9", "11.4.3"),
}
DESCRIPTIONS = {
    "postgres": "PostgreSQL",
    "aurora-postgresql": "Aurora (PostgreSQL)",
    "mysql": "MySQL Community Edition",
    "aurora-mysql": "Aurora MySQL",
    "mariadb": "MariaDB Community Edition",
}


def _key(version: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in version.replace("_", ".").split("."))


def parameter_group_family(engine: str, version: str) -> str:
    """postgres 16.4 -> postgres16; mysql 8.0.36 -> mysql8.0; aurora-postgresql 15.4 -> aurora-postgresql15."""
    if engine == "aurora-mysql":
        return "aurora-mysql" + ".".join(version.split(".")[:2])
    return f"{engine}{major_version(engine, version)}"


def is_known(engine: str, version: str) -> bool:
    return version in CATALOGUE.get(engine, ())


def upgrade_targets(engine: str, version: str) -> list[tuple[str, bool]]:
    """(target, is_major) for every catalogued version after `version`, oldest first."""
    if not is_known(engine, version):
        return []
    later = [v for v in CATALOGUE[engine] if _key(v) > _key(version)]
    return [(v, is_major_upgrade(engine, version, v)) for v in later]


def check_upgrade_path(engine: str, current: str, requested: str) -> None:
    """AWS refuses a target that is not a valid upgrade target of the current version (a downgrade, say)."""
    if requested == current or not is_known(engine, current):
        return
    if requested not in {target for target, _ in upgrade_targets(engine, current)}:
        raise errors.invalid_parameter_combination(f"Cannot find upgrade path from {current} to {requested}.")


@dataclass(frozen=True)
class EngineVersion:
    engine: str
    version: str

    def as_dict(self) -> dict[str, Any]:
        family = parameter_group_family(self.engine, self.version)
        name = DESCRIPTIONS.get(self.engine, self.engine)
        return {
            "Engine": self.engine,
            "EngineVersion": self.version,
            "MajorEngineVersion": major_version(self.engine, self.version),
            "DBParameterGroupFamily": family,
            "DBEngineDescription": name,
            "DBEngineVersionDescription": f"{name} {self.version}",
            "Status": "available",
            "SupportsReadReplica": True,
            "SupportsLogExportsToCloudwatchLogs": True,
            "ValidUpgradeTarget": [
                {
                    "Engine": self.engine,
                    "EngineVersion": target,
                    "Description": f"{name} {target}",
                    "AutoUpgrade": False,
                    "IsMajorVersionUpgrade": major,
                }
                for target, major in upgrade_targets(self.engine, self.version)
            ],
        }


def describe_db_engine_versions(
    engine: str | None = None,
    engine_version: str | None = None,
    family: str | None = None,
    default_only: bool = False,
) -> list[dict[str, Any]]:
    found = []
    for name, versions in CATALOGUE.items():
        if engine and name != engine:
            continue
        chosen = [versions[-1]] if default_only and not engine_version else list(versions)
        for version in chosen:
            if engine_version and version != engine_version:
                continue
            if family and parameter_group_family(name, version) != family:
                continue
            found.append(EngineVersion(name, version).as_dict())
    return found


def describe_db_engine_versions_response(response: RDSResponse) -> PaginatedResult:
    """The RDSResponse handler moto lacks (installed by sandbox.aws.rds_behaviours)."""
    params = response.params
    versions = describe_db_engine_versions(
        engine=params.get("Engine"),
        engine_version=params.get("EngineVersion"),
        family=params.get("DBParameterGroupFamily"),
        default_only=str(params.get("DefaultOnly", "false")).lower() == "true",
    )
    return PaginatedResult({"DBEngineVersions": versions})


class EngineVersionsMixin:
    """The catalogue's rule for upgrades; mixed into SandboxRDSBackend."""

    def check_upgrade_path(self, engine: str, current: str, requested: str) -> None:
        check_upgrade_path(engine, current, requested)
