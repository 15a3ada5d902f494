//! Inputs the fuzz targets found that once broke a parser, kept so they
//! never break it again (none yet: add each one here with the fix).
