#!/usr/bin/perl

# The hostile table (t/hostile/cases.pl) against one gateway whose
# requests log at info (the level above nginx's own debug output): every
# case gets its documented answer and evidence (read from Redis), and no
# line of any log file holds a token, a credential or a private key.
# Driver: t/hostile/Hostile.pm.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Hostile;

Hostile::run(quiet => 1);
