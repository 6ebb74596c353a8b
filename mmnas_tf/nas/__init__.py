"""Architecture search: genotypes, op pools (mixed ops and the search model come with the engine)."""

from mmnas_tf.nas.genotype import DECODER_OPS, ENCODER_OPS, Genotype, OpPools, mcan

__all__ = ["DECODER_OPS", "ENCODER_OPS", "Genotype", "OpPools", "mcan"]
