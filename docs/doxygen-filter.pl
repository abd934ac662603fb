#!/usr/bin/perl
# SPDX-License-Identifier: MIT
#
# Doxygen INPUT_FILTER for wof's headers (docs/Doxyfile.in): reads a header, prints it with its
# kernel-doc style comments spelled the way Doxygen reads them. The headers stay plain C and
# kernel-doc; only what Doxygen sees changes, and line for line (the aliases that Doxyfile.in
# defines start their paragraphs on a new line), so warnings point at the header's real lines:
#
#   /* one-line file summary */          ->  /** \woffile one-line file summary */
#   /**                                      /**
#    * name() - summary                  ->   * @brief summary
#    * Memory ordering: text             ->   * \wofordering text
#    * Fork: text                        ->   * \woffork text          (also after ". ")
#    * Return: text                      ->   * @return text
#   #define WOF_X 1u  /* text */         ->  #define WOF_X 1u  /**< text */
use strict;
use warnings;

local $/;
my $text = <>;
$text = '' unless defined $text;

# The first plain comment that is not the SPDX line describes the file.
$text =~ s{^/\*(?!\*)(?!\s*SPDX)}{/** \\woffile}m;

# Inside each /** ... */ block.
$text =~ s{(/\*\*.*?\*/)}{doc($1)}gse;

# A trailing comment on a public #define documents that macro.
$text =~ s{^(\s*#\s*define\s+WOF_(?!INTERNAL_)\w+[^\n]*?)/\*(?![*<])}{$1/**<}mg;

print $text;

sub doc {
	my ($c) = @_;
	# kernel-doc's "name() - summary" (or "struct name - summary") first line is the brief.
	$c =~ s{\A/\*\*(\s*\n\s*\*\s*)(?:struct\s+)?\w+(?:\(\))?\s+-\s+}{/**$1\@brief }s;
	$c =~ s{^(\s*\*\s*)Memory ordering:}{$1\\wofordering}mg;
	$c =~ s{^(\s*\*\s*)Return:}{$1\@return}mg;
	# "Fork:" opens a paragraph of its own, at the start of a line or after a sentence.
	$c =~ s{^(\s*\*\s*(?:.*?\.\s+)?)Fork:}{$1\\woffork}mg;
	return $c;
}
