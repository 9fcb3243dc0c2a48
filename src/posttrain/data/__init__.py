"""Data: conversation sources, supervised datasets (indexable and streaming), builders, preference data.

* :mod:`posttrain.data.sources` — load and validate conversations from files, URLs and the hub.
* :mod:`posttrain.data.supervised` — batches over a ``datasets.Dataset`` with exact epoch order.
* :mod:`posttrain.data.streaming` — the same over a stream, with a shuffle buffer and flat memory.
* :mod:`posttrain.data.builders` — conversation-file and hub chat-dataset builders (train/test).
* :mod:`posttrain.data.preference` — comparisons, preference-set builders and DPO datum pairs.
"""

from posttrain.data.sources import (
    SkipReport,
    load_conversations,
    load_conversations_with_report,
    stream_conversations,
)
from posttrain.data.streaming import StreamingSupervisedDataset
from posttrain.data.supervised import SupervisedDataset, SupervisedDatasetFromHFDataset, conversation_to_datum

__all__ = [
    "SkipReport",
    "StreamingSupervisedDataset",
    "SupervisedDataset",
    "SupervisedDatasetFromHFDataset",
    "conversation_to_datum",
    "load_conversations",
    "load_conversations_with_report",
    "stream_conversations",
]
