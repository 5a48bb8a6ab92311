"""nftables rulesets as data: typed tables rendered as one `nft -f` transaction, in full or
as a diff (table.py), and an in-memory fake that applies such transactions (fake.py)."""

from netlab.nft.fake import FakeNft, NftError, canonical
from netlab.nft.table import Table, comment

__all__ = ["FakeNft", "NftError", "Table", "canonical", "comment"]
