#!/usr/bin/perl

# foxgov-ledgerd with the PostgreSQL backend, a real PostgreSQL and a real
# Redis: records in the tenant streams end in foxgov.ledger (the schema
# made by the daemon itself) and foxgov verify accepts them; a record
# delivered again is not appended again; signed checkpoints are kept in
# foxgov.checkpoint and verified; two daemons on one database, in one
# consumer group or each in its own (every entry read twice), append
# every record exactly once with a dense seq; a daemon rides out its
# connections being killed and the server restarting; a password in the
# URI is never logged.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Evidence qw(flows feed);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Postgres;
use FoxGov::Test::Redis;

plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

my $pg = FoxGov::Test::Postgres->new;
$pg->start;
my $uri = $pg->uri;

my $dir = tempdir('foxgov-ledgerd-pg-XXXXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{FOXGOV_TEST_KEEP});
my $redis = FoxGov::Test::Redis->new;
$redis->start;
my $r = $redis->client;

sub daemon {
    my ($name, @args) = @_;
    return FoxGov::Test::Ledgerd->new(redis => $redis, ledger => $uri,
        log => "$dir/$name.log", args => [ '--consumer', $name, @args ]);
}

# The envelope hashes of a tenant's ledger, in seq order.
sub ledger_hashes {
    my ($tenant) = @_;
    return split /\n/, $pg->psql("SELECT encode(envelope_hash, 'hex') "
        . "FROM foxgov.ledger WHERE tenant_id = '$tenant' ORDER BY seq");
}

# rows, distinct seq, max seq, distinct hashes of a tenant's ledger
sub ledger_shape {
    my ($tenant) = @_;
    return $pg->psql("SELECT count(*) || ' ' || count(DISTINCT seq) || ' ' "
        . "|| coalesce(max(seq), 0) || ' ' || count(DISTINCT envelope_hash) "
        . "FROM foxgov.ledger WHERE tenant_id = '$tenant'");
}

# "appended, duplicates, dead-lettered" of a daemon's last stopping line
sub counts {
    my ($d) = @_;
    my @m = $d->log_text =~
        /stopping: (\d+) appended, (\d+) duplicates, (\d+) dead-lettered/g;
    return @m[-3 .. -1];
}

sub same_set {
    my ($got, $want) = @_;
    return join(',', sort @$got) eq join(',', sort @$want);
}

sub wait_rows {
    my ($tenant, $n, $timeout) = @_;
    my $deadline = time() + $timeout;
    my $got;
    while (1) {
        $got = $pg->psql("SELECT count(*) FROM foxgov.ledger "
                         . "WHERE tenant_id = '$tenant'");
        return $got if $got >= $n || time() > $deadline;
        sleep 0.1;
    }
}

# ------------------------------------------------------------ end to end

my @acme = flows('acme', 40, salt => 'pg-e2e');
my @beta = flows('beta', 25, salt => 'pg-e2e');
feed($redis, 'acme', @acme);
feed($redis, 'beta', @beta);

{
    my $d = daemon('e2e');
    is($d->run_once, 0, '--once drains the streams into PostgreSQL')
        or diag($d->log_text);
    is($pg->psql("SELECT value FROM foxgov.meta "
                 . "WHERE name = 'schema_version'"), '1',
       'the daemon made the schema');

    for my $t ([acme => \@acme], [beta => \@beta]) {
        my ($tenant, $recs) = @$t;
        $pg->verify_ok($tenant, scalar @$recs, 'one daemon');
        is_deeply([ ledger_hashes($tenant) ], [ map { $_->[1] } @$recs ],
                  "$tenant: in stream order");
        is($r->xlen("foxgov:ev:{$tenant}"), 0,
           "$tenant: the acknowledged entries are trimmed");
    }
    is_deeply([ counts($d) ], [195, 0, 0], 'the daemon says what it did');

    my ($row) = $pg->psql("SELECT record_type || ' ' || trace_id || ' ' "
        . "|| execution_id || ' ' || (record = convert_to('$acme[2][2]', "
        . "'UTF8')) FROM foxgov.ledger WHERE tenant_id = 'acme' AND seq = 3");
    like($row, qr/^ModelCallRecord [0-9a-f]{32} \S+ true$/,
         'a row: its type, trace and execution id, the record\'s bytes as '
         . 'sent');

    # the same records again (a gateway that resent them): deduplicated
    feed($redis, 'acme', @acme[0 .. 29]);
    is($d->run_once, 0, 'a second run');
    is(scalar(ledger_hashes('acme')), scalar @acme,
       'records delivered again are not appended again');
    is_deeply([ counts($d) ], [0, 30, 0], 'they are counted as duplicates');
    is($pg->psql("SELECT seq FROM foxgov.head WHERE tenant_id = 'acme'"),
       scalar @acme, 'the head is the last seq');
}

# ---------------------------------------------------------- checkpoints

{
    my ($rc, undef, $err) = run_foxgov('keygen', '--kid', 'ckpt', '--out',
                                       $dir);
    is($rc, 0, 'an Ed25519 checkpoint key') or diag($err);

    my @more = flows('acme', 100, salt => 'pg-ckpt');
    feed($redis, 'acme', @more);
    my $d = daemon('ckpt', '--checkpoint-key', "$dir/ckpt.pem",
                   '--checkpoint-every', '50', '--checkpoint-every', '1h',
                   '--batch', '40');
    is($d->run_once, 0, 'a run signing checkpoints') or diag($d->log_text);

    my $n = @acme + @more;
    my @cp = split /\n/, $pg->psql("SELECT seq FROM foxgov.checkpoint "
                                   . "WHERE tenant_id = 'acme' ORDER BY seq");
    ok(@cp >= 4, scalar(@cp) . ' checkpoints in foxgov.checkpoint');
    is($cp[-1], $n, 'the last one at the head');

    my @v = ('verify', $uri, '--tenant', 'acme', '--trusted-key',
             "$dir/ckpt.jwks.json");
    my ($rc2, $out, $err2) = run_foxgov(@v);
    is($rc2, 0, 'foxgov verify checks the ledger against them')
        or diag($err2);
    like($out, qr/$n records.*checkpoints verified \(latest seq $n\)/,
         'all of them');

    # the tail cut below the last checkpoint, the head moved with it
    my $keep = $n - 10;
    $pg->psql("SET session_replication_role = replica;\n"
        . "DELETE FROM foxgov.ledger WHERE tenant_id = 'acme' "
        . "AND seq > $keep;\n"
        . "UPDATE foxgov.head SET seq = $keep, chain = (SELECT chain FROM "
        . "foxgov.ledger WHERE tenant_id = 'acme' AND seq = $keep) "
        . "WHERE tenant_id = 'acme'");
    my ($rc3, undef, $err3) = run_foxgov(@v);
    is($rc3, 1, 'a ledger cut below its checkpoint is refused');
    like($err3, qr/ends at seq $keep, below its checkpoint at seq $n/,
         'naming where it ends and the checkpoint') or diag($err3);
}

# ------------------------------------ two daemons, one consumer group

{
    my @gamma = flows('gamma', 400, salt => 'pg-two');
    my @delta = flows('delta', 200, salt => 'pg-two');
    feed($redis, 'gamma', @gamma, @gamma[0 .. 299]);    # 300 resent
    feed($redis, 'delta', @delta);

    my @d = map { daemon("group-$_", '--batch', '25') } 1, 2;
    my @pid = map { $_->_spawn($_->argv('--once')) } @d;
    my @rc;
    for my $p (@pid) {
        waitpid $p, 0;
        push @rc, $? >> 8;
    }
    is_deeply(\@rc, [0, 0], 'two daemons in one group, at once: both exit 0')
        or diag(join "\n", map { $_->log_text } @d);

    for my $t ([gamma => \@gamma], [delta => \@delta]) {
        my ($tenant, $recs) = @$t;
        my $n = @$recs;
        is(ledger_shape($tenant), "$n $n $n $n",
           "$tenant: $n rows, seq 1..$n dense, each record once");
        ok(same_set([ ledger_hashes($tenant) ], [ map { $_->[1] } @$recs ]),
           "$tenant: exactly the records sent");
        $pg->verify_ok($tenant, $n, 'two daemons');
    }

    my @c = map { [ counts($_) ] } @d;
    is($c[0][0] + $c[1][0], 1800, 'together they appended each record once');
    is($c[0][1] + $c[1][1], 300, 'and found each resent one a duplicate');
    ok($c[0][0] > 0 && $c[1][0] > 0, "both appended ($c[0][0] and "
                                     . "$c[1][0])");
    is($c[0][2] + $c[1][2], 0, 'nothing dead-lettered');
}

# ------------------------- two daemons, two groups: every entry twice

{
    my @eps = flows('epsilon', 300, salt => 'pg-groups');
    feed($redis, 'epsilon', @eps);

    my @d = map { daemon("groups-$_", '--group', "g$_", '--no-trim',
                         '--batch', '30') } 1, 2;
    my @pid = map { $_->_spawn($_->argv('--once')) } @d;
    my @rc;
    for my $p (@pid) {
        waitpid $p, 0;
        push @rc, $? >> 8;
    }
    is_deeply(\@rc, [0, 0], 'two daemons reading every entry: both exit 0')
        or diag(join "\n", map { $_->log_text } @d);

    is(ledger_shape('epsilon'), '900 900 900 900',
       'epsilon: 900 rows, dense, each record once');
    $pg->verify_ok('epsilon', 900, 'every entry twice');

    my @c = map { [ counts($_) ] } @d;
    is($c[0][0] + $c[1][0], 900, 'appended once between them');
    is($c[0][1] + $c[1][1], 900, 'the other copy of each a duplicate');
}

# --------------------------------- lost connections, a server restart

{
    my $d = daemon('restart', '--block', '100ms');
    $d->start;

    my @z = flows('zeta', 150, salt => 'pg-restart');
    feed($redis, 'zeta', @z[0 .. 149]);
    is(wait_rows('zeta', 150, 20), 150, 'a running daemon appends');

    # its connection killed under it
    $pg->psql("SELECT count(pg_terminate_backend(pid)) FROM "
              . "pg_stat_activity WHERE application_name = 'foxgov-ledgerd'");
    feed($redis, 'zeta', @z[150 .. 299]);
    is(wait_rows('zeta', 300, 20), 300, 'and goes on when its connection '
                                        . 'is killed');

    # the server down while records arrive, then back
    $pg->stop;
    feed($redis, 'zeta', @z[300 .. 449]);
    sleep 1;
    ok($d->running, 'the daemon waits while PostgreSQL is down');
    $pg->start;
    is(wait_rows('zeta', 450, 30), 450, 'and appends once it is back');

    is($d->stop, 0, 'SIGTERM: it stops cleanly');
    is(ledger_shape('zeta'), '450 450 450 450', 'zeta: each record once');
    $pg->verify_ok('zeta', 450, 'a restart');
    is(($r->xpending('foxgov:ev:{zeta}', 'foxgov-ledger'))[0], 0,
       'nothing left pending');
}

# ------------------------------------------------------------ secrets

{
    my $secret = 'pw-s3cr3t-XYZ';
    my $d = FoxGov::Test::Ledgerd->new(redis => $redis,
        ledger => "postgresql://foxgov:$secret\@127.0.0.1:1/foxgov",
        log => "$dir/secret.log", args => [ '--consumer', 'secret' ]);
    is($d->run_once, 1, 'no database to connect to: exit 1');
    like($d->log_text, qr/PostgreSQL: cannot connect/, 'saying why');
    unlike($d->log_text, qr/\Q$secret\E/, 'never logging the password');

    # a role that row-level security applies to sees only some rows: it
    # would chain on a head it cannot see
    $pg->psql("CREATE ROLE reader LOGIN;\n"
              . "GRANT USAGE ON SCHEMA foxgov TO reader;\n"
              . "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA foxgov "
              . "TO reader");
    my $rd = FoxGov::Test::Ledgerd->new(redis => $redis,
        ledger => $pg->uri(user => 'reader'), log => "$dir/reader.log",
        args => [ '--consumer', 'reader' ]);
    is($rd->run_once, 1, 'a daemon as a role under row-level security: '
                         . 'exit 1');
    like($rd->log_text, qr/row-level security applies to this role/,
         'saying why');
}

$r->quit;
$redis->stop;
$pg->stop;

done_testing();
