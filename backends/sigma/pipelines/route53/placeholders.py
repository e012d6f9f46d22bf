"""The ``%ioc_domains%`` placeholder (``|expand``), resolved from a user-supplied domain list.

Every Route 53 pipeline runs this first, before case folding and field mapping, so the listed
domains are ordinary case-insensitive values to the rest of the pipeline. The list comes from the
pipeline variables ``ioc_domains`` / ``ioc_domains_file`` (e.g. ``vars:`` in a pipeline YAML added
with ``sigma convert -p``), else the environment variable ``R53SIGMA_IOC_DOMAINS`` (formats and
normalisation: :mod:`r53sigma.ioc`). Without a list the rule is refused as not expressible, with
how to give one; a broken list is a configuration error naming the file and line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from sigma.exceptions import SigmaConfigurationError, SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingItem
from sigma.processing.transformations.placeholder import BasePlaceholderTransformation
from sigma.types import Placeholder, SigmaString

from r53sigma import ioc


@dataclass
class IocDomainsPlaceholder(BasePlaceholderTransformation):
    """Replace ``%ioc_domains%`` with the listed domains (``domains`` given: the engines' own list)."""

    domains: list[str] | None = None
    include: list[str] | None = field(default_factory=lambda: [ioc.PLACEHOLDER])

    def placeholder_replacements(self, p: Placeholder) -> Iterable[SigmaString]:
        if self.domains is None:
            variables = dict(self._pipeline.vars) if self._pipeline is not None else {}
            try:
                self.domains = ioc.domains_from(variables)
            except ioc.IocListError as error:
                raise SigmaConfigurationError(f"%{ioc.PLACEHOLDER}%: {error}") from None
            if self.domains is None:
                raise SigmaFeatureNotSupportedByBackendError(f"no list for the placeholder %{ioc.PLACEHOLDER}%: {ioc.HOW_TO_GIVE}")
        if not self.domains:
            raise SigmaConfigurationError(f"the list for %{ioc.PLACEHOLDER}% has no domains (after the category filter)")
        # validated host names: no wildcard or escape character can reach the query
        return [SigmaString(domain) for domain in self.domains]


def resolve_ioc_domains(pipeline_id: str) -> ProcessingItem:
    return ProcessingItem(identifier=f"{pipeline_id}_ioc_domains", transformation=IocDomainsPlaceholder())
