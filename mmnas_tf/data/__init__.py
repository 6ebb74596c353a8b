"""Data: TFRecord schema, writers, tf.data pipelines, feature stores and converters.

Modules (imported on use, so ``mmnas_tf.data.answers`` stays free of TensorFlow):
  ``schema``         the common fields and ``RecordFormat`` (a task adds its target fields; the
                     tasks in ``mmnas_tf.tasks`` are record formats): ``encode_record`` (writer) /
                     ``decode_record`` (reader)
  ``writer``         sharded resumable writing, ``manifest.json``, ``load_manifest``, ``split_files``
  ``pipeline``       ``PipelineConfig``, ``Pipeline(data_dir, split, config).dataset()``
  ``feature_store``  ``MatchingStore`` (arrays) and ``FeatureStore`` (a split): any image's regions /
                     any caption's ids by index (ITM hard negatives and retrieval)
  ``answers``        official VQA answer normalisation, soft scores, answer vocabulary
  ``converters``     real datasets (``python -m mmnas_tf.convert``)
The formats are documented in ``tfrecords/README.md``; the synthetic benchmark that writes them is
``mmnas_tf.synthbench``.
"""
