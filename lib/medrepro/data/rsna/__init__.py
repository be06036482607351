"""Study B's data: RSNA labels and splits, the windowed-image cache, its reader and its tables.

One module per job; the names a notebook uses are re-exported here (``rsna.ensure_cache``):

- :mod:`.labels`: ``stage_2_train.csv`` read into one row per image (:func:`read_labels`), the
  paper's six classes (:func:`select_single_type`), the image- and patient-level splits.
- :mod:`.layout`: the cache folder's files (``build.json``, shards, ``manifest.csv``,
  ``summary.json``, the split files) and their checks.
- :mod:`.cache`: building it with worker processes, resumable at any moment
  (:func:`ensure_cache`, :func:`build_cache`), then writing the splits.
- :mod:`.reader`: the manifest, the splits, images by row and the ``tf.data`` pipeline
  (:func:`load_split`, :func:`make_dataset`).
- :mod:`.tables`: ``B.table1``, ``B.skips``, ``B.cache`` and the DICOM of ``B.fig3``.
"""

from medrepro.data.rsna.cache import (SELECTED_FRACTION, build_cache, ensure_cache,
                                      selected_images, unlabelled_images, write_splits)
from medrepro.data.rsna.labels import (CLASSES, DATASET_ID, IMAGES_DIR, LABELS_CSV,
                                       N_CLASSES, NO_IMAGE, NO_LABEL, SPLITS, SUBTYPES,
                                       RsnaDataError, check_usable, read_labels,
                                       select_single_type, split_by_patient, split_stratified)
from medrepro.data.rsna.layout import (CACHE_FORMATS, DEFAULT_FORMAT, IMAGE_SIZE,
                                       RAW_IMAGE_BYTES, CacheError, cache_dir, check_shard_files,
                                       is_complete)
from medrepro.data.rsna.reader import (load_images, load_manifest, load_split, make_dataset,
                                       read_summary, split_notes)
from medrepro.data.rsna.tables import (cache_table, figure_sample, patients_note, skip_record,
                                       skips_table, table1)

__all__ = ["CACHE_FORMATS", "CLASSES", "DATASET_ID", "DEFAULT_FORMAT", "IMAGES_DIR",
           "IMAGE_SIZE", "LABELS_CSV", "NO_IMAGE", "NO_LABEL", "N_CLASSES", "RAW_IMAGE_BYTES",
           "SELECTED_FRACTION", "SPLITS", "SUBTYPES", "CacheError", "RsnaDataError",
           "build_cache", "cache_dir", "cache_table", "check_shard_files", "check_usable",
           "ensure_cache", "figure_sample", "is_complete", "load_images", "load_manifest",
           "load_split", "make_dataset", "patients_note", "read_labels", "read_summary",
           "select_single_type", "selected_images", "skip_record", "skips_table",
           "split_by_patient", "split_notes", "split_stratified", "table1",
           "unlabelled_images", "write_splits"]
