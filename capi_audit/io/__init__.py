"""Input formats. Each module reads one format and lands rows in a canonical table."""

from __future__ import annotations

from capi_audit.io.auto import AutoReader  # noqa: E402
from capi_audit.io.base import Reader
from capi_audit.io.canonical import CanonicalReader
from capi_audit.io.ga4 import Ga4ExportReader
from capi_audit.io.ga4_mp import Ga4MeasurementProtocolReader
from capi_audit.io.google_ads import GoogleAdsReportReader, GoogleClickConversionsReader
from capi_audit.io.google_tag import GoogleTagHitsReader
from capi_audit.io.google_upload import GoogleUploadLogReader
from capi_audit.io.google_upload_summary import GoogleUploadSummaryReader
from capi_audit.io.meta_ads import MetaAdsExportReader
from capi_audit.io.meta_capi import MetaCapiPayloadReader
from capi_audit.io.meta_pixel import MetaPixelHitsReader
from capi_audit.io.shopify import ShopifyOrdersReader

FORMATS: dict[str, Reader] = {r.name: r for r in (
    CanonicalReader(), MetaCapiPayloadReader(), MetaPixelHitsReader(), Ga4ExportReader(),
    GoogleClickConversionsReader(), GoogleAdsReportReader(), MetaAdsExportReader(), ShopifyOrdersReader(),
    GoogleTagHitsReader(), Ga4MeasurementProtocolReader(), GoogleUploadLogReader(),
    GoogleUploadSummaryReader(), AutoReader())}


def register(reader: Reader) -> None:
    """Make a reader available under its format name."""
    FORMATS[reader.name] = reader


__all__ = ["FORMATS", "Reader", "register"]
