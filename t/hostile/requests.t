#!/usr/bin/perl

# The hostile table (t/hostile/cases.pl) against one gateway whose error
# log is at debug, the module's evidence lines on: every case gets its
# documented answer and evidence; the module's log lines and every line
# above debug hold no secret.  Driver: t/hostile/Hostile.pm.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib", $FindBin::Bin;

use Hostile;

Hostile::run(quiet => 0);
