"""Architecture search: the search model, its gradient estimators and the search loop.

Modules (import the one you need; this package imports nothing itself):
  choices       the names of the estimators and architecture-path modes of the search
  estimators    the estimators as registered classes (gumbel, proxyless, uniform,
  gumbel_selection; register_estimator adds one) and their seeded sampling
  recipes       named search recipes (the default one that ``mmnas_tf.search`` runs)
  selection     the selection step that ends a uniform or gumbel_selection search
  temperature   TemperatureSchedule (Gumbel-softmax temperature per epoch)
  search_model  SearchModel (alternating weight / architecture steps), cycle_dataset
  searcher      Searcher (the search loop with checkpoint and resume)
  reporting     search reports (genotype history, theta)
  inherit       inherit_from_supernet (searched weights -> fixed network)
The genotype (``mmnas_tf.genotype``) and the mixed op (``mmnas_tf.layers.mixed_op``) sit lower:
configs and the backbone use them.
"""
