#!/usr/bin/perl

# The spool on the gateway: a spool left by a stopped gateway with a torn
# last entry (a crash while writing) is taken over by the next one, the
# torn entry cut with a log line and every whole one sent to Redis; a
# spool corrupted in the middle is left as it is for an operator, with an
# alert naming the file; a full spool (max_size) refuses records with an
# alert naming each one, never silently.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp ();
use Test::More;
use Time::HiRes qw(time sleep);

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(foxgov_bin);
use FoxGov::Test::Gateway;
use FoxGov::Test::Redis;

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

my $redis = FoxGov::Test::Redis->new;

sub gateway {
    my ($spool, $max) = @_;
    my $g = FoxGov::Test::Gateway->new;
    $g->with_redis($redis->addr, spool => $spool,
        redis => 'connect_timeout=300ms timeout=1s',
        spool_args => $max ? "max_size=$max" : '');
    $g->start;
    return $g;
}

sub call {
    my ($g) = @_;
    my $r = $g->request(POST => '/v1/chat/completions', token => $g->token,
        body => { model => 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => 'spooled' } ] });
    return $r->{status} == 200 ? $r->{headers}{'foxgov-execution-id'} : undef;
}

sub spool_files { return glob "$_[0]/spool-*.fgs" }

sub wait_log {
    my ($g, $re, $timeout) = @_;
    my $deadline = time() + ($timeout // 5);
    while (time() < $deadline) {
        my $log = $g->nginx->read_file('error.log');
        return $log if $log =~ $re;
        sleep 0.1;
    }
    return $g->nginx->read_file('error.log');
}

my $shared = File::Temp::tempdir('foxgov-spool-XXXXXXXX', TMPDIR => 1,
                                 CLEANUP => 1);
chmod 0755, $shared;

# ---------------------------- a torn last entry, taken over and sent

{
    my $spool = "$shared/torn";
    my $g = gateway($spool);                # Redis is not running
    my @ids = grep { defined } map { call($g) } 1 .. 4;
    is(scalar @ids, 4, 'served with Redis down');
    is($g->stop, 0, 'stopped, the spool kept');
    my @f = spool_files($spool);
    is(scalar @f, 1, 'one spool file left');

    # a crash in the middle of writing one more entry
    open my $fh, '>>:raw', $f[0] or die "$f[0]: $!";
    print $fh "FGE1\x{40}\x{01}\x{00}\x{00}partial";
    close $fh;

    $redis->start;
    my $g2 = gateway($spool);
    my $log = wait_log($g2, qr/adopted \d+ records/);
    like($log, qr/spool \S+: a torn last entry of 15 bytes was cut/,
         'the torn entry is cut, with a log line');
    like($log, qr/adopted 12 records from spool/,
         'every whole record is taken over');
    my ($by, $missing) = $redis->wait_calls('acme', 10, @ids);
    is($missing, 0, 'and sent to Redis');
    is($g2->stop, 0, 'stops cleanly');
    my ($ok, @bad) = $g2->nginx->error_log_ok;
    ok($ok, 'no alert') or diag(join "\n", @bad);
    $redis->stop;
}

# ---------------------------- corrupted in the middle: left as it is

{
    my $spool = "$shared/corrupt";
    my $g = gateway($spool);
    my @ids = grep { defined } map { call($g) } 1 .. 3;
    is($g->stop, 0, 'stopped, the spool kept');
    my ($f) = spool_files($spool);
    my $size = -s $f;

    # one byte in the middle of the second call's records
    open my $fh, '+<:raw', $f or die "$f: $!";
    seek $fh, int($size / 2), 0;
    read $fh, my $c, 1;
    seek $fh, int($size / 2), 0;
    print $fh chr(ord($c) ^ 0x20);
    close $fh;

    $redis->start;
    my $g2 = gateway($spool);
    my $log = wait_log($g2, qr/left as it is/);
    like($log, qr/\[alert\] .*foxgov: spool \Q$f\E left as it is: .*check does not match/,
         'an alert names the file and the reason');
    ok(-e $f && -s $f == $size, 'the file is left untouched');
    ok(call($g2), 'the gateway serves on');
    is($g2->stop, 0, 'stops cleanly');
    $redis->stop;
}

# ---------------------------- full: refused, each record named

{
    my $spool = "$shared/full";
    my $g = gateway($spool, '64k');
    my $served = 0;
    my $log = '';
    for (1 .. 60) {
        $served++ if call($g);
        $log = $g->nginx->read_file('error.log');
        last if $log =~ /is full/;
    }
    # a call is refused before its first record when its evidence has no
    # room to be held (docs/spool.md, "Room held"); a record that finds
    # none is named
    like($log, qr/\[alert\] .*foxgov: (?:a \w+ record \([0-9a-f]{64}\) is neither in redis nor in the spool|no room in the spool for the evidence of \S+): spool \S+ is full \(max_size 65536 bytes/,
         'a record or call that does not fit is named at alert, not dropped silently');
    my ($f) = spool_files($spool);
    cmp_ok(-s $f, '<=', 65536, 'the spool stays within max_size');
    ok($served > 0, "calls were served ($served)");
    is($g->stop, 0, 'stops cleanly');
}

done_testing();
