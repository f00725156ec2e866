#!/usr/bin/perl

# foxgov_redis password_file= and db=: with the right password the records
# land in the database db= names; with a wrong one Redis refuses AUTH, the
# worker says so (never the password), the calls are still served and the
# records wait in the spool.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

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

my $secret = 'redis-secret-' . int(rand(1e9));
my $redis = FoxGov::Test::Redis->new(password => $secret);
$redis->start;

# A gateway whose password_file holds $password, db= $db (3).
sub gateway {
    my ($password, $db) = @_;
    $db //= 3;
    my $g = FoxGov::Test::Gateway->new;
    my $d = $g->dir;
    $g->nginx->write_file('redis.password', "$password\n");
    $g->with_redis($redis->addr,
        redis => "password_file=$d/redis.password db=$db timeout=1s");
    $g->start;
    return $g;
}

sub call {
    my ($g) = @_;
    return $g->request(POST => '/v1/chat/completions', token => $g->token,
        body => { model => 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => 'hello' } ] });
}

sub spooled {
    my ($g) = @_;
    my $n = 0;
    $n += -s $_ for glob $g->dir . '/spool/spool-*.fgs';
    return $n;
}

{
    my $g = gateway($secret);
    my $r = call($g);
    is($r->{status}, 200, 'right password: served');
    my $exec = $r->{headers}{'foxgov-execution-id'};
    my $deadline = time() + 5;
    my @e;
    while (time() < $deadline) {
        @e = grep { index($_->{r}, $exec) >= 0 } $redis->entries('acme', 3);
        last if @e == 3;
        sleep 0.1;
    }
    is(scalar @e, 3, 'its three records are in db 3');
    is(scalar(() = $redis->entries('acme', 0)), 0, 'and none in db 0');
    is(spooled($g), 8, 'nothing spooled');
    is($g->stop, 0, 'stops cleanly');
    unlike($g->nginx->read_file('error.log'), qr/\Q$secret\E/,
           'the password is in no log line');
}

{
    my $g = gateway('not-the-password');
    my $r = call($g);
    is($r->{status}, 200, 'wrong password: still served (async)');
    my $deadline = time() + 5;
    my $log = '';
    while (time() < $deadline) {
        $log = $g->nginx->read_file('error.log');
        last if $log =~ /redis refused AUTH/;
        sleep 0.1;
    }
    like($log, qr/foxgov: redis refused AUTH: \S/,
         'the worker says Redis refused AUTH, and why');
    $deadline = time() + 5;
    sleep 0.1 while spooled($g) <= 8 && time() < $deadline;
    cmp_ok(spooled($g), '>', 8, 'the records wait in the spool');
    is($g->stop, 0, 'stops cleanly');
    unlike($g->nginx->read_file('error.log'), qr/not-the-password/,
           'the password is in no log line');
}

{
    # a database Redis does not have: SELECT refused, nothing sent to db 0
    my $g = gateway($secret, 16);
    my $r = call($g);
    is($r->{status}, 200, 'db=16: still served (async)');
    my $deadline = time() + 5;
    my $log = '';
    while (time() < $deadline) {
        $log = $g->nginx->read_file('error.log');
        last if $log =~ /redis refused SELECT/;
        sleep 0.1;
    }
    like($log, qr/foxgov: redis refused SELECT: \S/,
         'the worker says Redis refused SELECT');
    sleep 0.5;
    is(scalar(() = $redis->entries('acme', 0)), 0,
       'no record went to the database it was not meant for');
    cmp_ok(spooled($g), '>', 8, 'they wait in the spool');
    is($g->stop, 0, 'stops cleanly');
}

$redis->stop;

done_testing();
