#!/usr/bin/perl

# conf/fleet, run for real: a 3-master Redis Cluster whose nodes run
# conf/fleet/redis.conf (moved to loopback ports and temp dirs, its
# password kept), made with redis-cli --cluster create; a PostgreSQL with
# the roles of conf/fleet/README.md (its SQL run as written); two
# foxgov-ledgerd running conf/fleet/foxgov-ledgerd.conf (consumer
# ledgerd-1 and ledgerd-2, as the README says); two gateways running
# conf/fleet/nginx.conf (moved as t/conf-example.t moves conf/nginx.conf,
# the upstreams the mock providers in plain HTTP).  Traffic of several
# tenants through both gateways, model calls (strict) and ServiceNow
# reads (async): every call served is recorded exactly once in the
# ledger, and foxgov verify postgresql://... is green for each tenant
# (acme's as its auditor, who sees nothing else).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::ConfExample qw(move_conf paths_left);
use FoxGov::Test::Nginx qw(repo_root module_path nginx_binary);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov free_port);
use FoxGov::Test::Gateway;
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Postgres;
use FoxGov::Test::Redis;
use FoxGov::Test::Upstream;

my $top = repo_root();

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};
plan skip_all => 'no PostgreSQL' unless FoxGov::Test::Postgres::available();

local $SIG{ALRM} = sub { die "conf-fleet.t: timed out\n" };
alarm 280;

my $json = JSON::PP->new->canonical;
my $dir = tempdir('foxgov-fleet-XXXXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{FOXGOV_TEST_KEEP});

sub slurp { open my $f, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$f> }
sub spew {
    open my $f, '>:raw', $_[0] or die "$_[0]: $!";
    print $f $_[1];
    close $f;
}

# -------------------------------------------------- the Redis Cluster

my $rconf = slurp("$top/conf/fleet/redis.conf");
my %want_redis = (
    'cluster-enabled yes'      => qr/^cluster-enabled yes$/m,
    'appendonly yes'           => qr/^appendonly yes$/m,
    'appendfsync always'       => qr/^appendfsync always$/m,
    'maxmemory-policy noeviction' => qr/^maxmemory-policy noeviction$/m,
    'cluster-require-full-coverage no'
                               => qr/^cluster-require-full-coverage no$/m,
);
like($rconf, $want_redis{$_}, "redis.conf: $_") for sort keys %want_redis;
my ($password) = $rconf =~ /^requirepass (\S+)$/m;
ok($password, 'redis.conf sets a password');

my (@nodes, %taken);
for my $i (1 .. 3) {
    my $ndir = tempdir('foxgov-fleet-redis-XXXXXXXX', TMPDIR => 1,
                       CLEANUP => 1);
    my $port = FoxGov::Test::RedisCluster::cluster_port(\%taken);
    my $c = $rconf;
    my $n = 0;
    $n += $c =~ s/^bind \S+$/bind 127.0.0.1/m;
    $n += $c =~ s/^port \d+$/port $port/m;
    $n += $c =~ s{^dir \S+$}{dir $ndir}m;
    $n += $c =~ s{^logfile \S+$}{logfile $ndir/redis.log}m;
    $n += $c =~ s{^cluster-config-file \S+$}
                 {cluster-config-file $ndir/nodes.conf}m;
    is($n, 5, "node $i: redis.conf moved (bind, port, dir, logfile, "
              . 'nodes.conf)') if $i == 1;
    spew("$ndir/redis.conf", $c);
    push @nodes, FoxGov::Test::Redis->new(dir => $ndir, port => $port,
        conf => "$ndir/redis.conf", bare => 1, password => $password);
}
my $cluster = FoxGov::Test::RedisCluster->new(nodes => \@nodes,
                                              password => $password);
$cluster->start;
pass('the cluster of conf/fleet/redis.conf nodes is ok');
{
    my $r = $nodes[0]->client;
    my %cfg = $r->config('get', 'maxmemory-policy');
    is($cfg{'maxmemory-policy'}, 'noeviction', 'a node runs noeviction');
    $r->quit;
}
spew("$dir/redis.password", "$password\n");
chmod 0644, "$dir/redis.password";      # the workers' user never reads it

# ----------------------------------------------------------- PostgreSQL

my $pg = FoxGov::Test::Postgres->new(db => 'postgres');
$pg->start;

my $readme = slurp("$top/conf/fleet/README.md");
my ($sql) = $readme =~ /^### 2\. PostgreSQL\n\n((?:    .*\n|\n)+)/m;
ok($sql, 'the README has the PostgreSQL commands');
$sql =~ s/^    //mg;
my ($admin, $owner) = split /^-- as foxgov_ledgerd.*\n/m, $sql, 2;
ok($admin && $owner, 'as an administrator, then as the tables\' owner');
{
    my ($rc, $out, $err) = $pg->psql_run($admin, db => 'postgres');
    is($rc, 0, 'the README\'s roles and schema are made') or diag($err);
}
my $ledger_uri = $pg->uri(user => 'foxgov_ledgerd', db => 'foxgov');

# ------------------------------------------------------ the ledgerds

my ($rc, $out, $err) = run_foxgov('keygen', '--kid', 'checkpoint', '--out',
                                  $dir);
is($rc, 0, 'a checkpoint key') or diag($err);

my $lconf = slurp("$top/conf/fleet/foxgov-ledgerd.conf");
my @ledgerd;
for my $i (1, 2) {
    my $c = $lconf;
    my $n = 0;
    $n += $c =~ s/^redis-cluster\s+\S+$/"redis-cluster "
                                        . join(',', $cluster->addrs)/me;
    $n += $c =~ s{^redis-password-file\s+\S+$}
                 {redis-password-file $dir/redis.password}m;
    $n += $c =~ s{^ledger\s+postgresql://\S+$}{ledger $ledger_uri}m;
    $n += $c =~ s{^consumer\s+ledgerd-1$}{consumer ledgerd-$i}m;
    $n += $c =~ s{^checkpoint-key\s+\S+$}
                 {checkpoint-key $dir/checkpoint.pem}m;
    is($n, 5, "ledgerd-$i: the example names redis-cluster, its password, "
              . 'the ledger, the consumer and the key');
    spew("$dir/ledgerd-$i.conf", $c);

    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/ledgerd-$i.log";
        open STDERR, '>&', \*STDOUT;
        my $bin = FoxGov::Test::Ledgerd::bin();
        exec { $bin } $bin, '--config', "$dir/ledgerd-$i.conf"
            or POSIX::_exit(127);
    }
    push @ledgerd, $pid;
}
END { kill 'KILL', @ledgerd if @ledgerd }

# ---------------------------------------------------- the gateways

my $etc = "$dir/foxgov-etc";
make_path("$etc/credentials", "$dir/keys");
for my $kid (qw(bundle auth approver)) {
    ($rc, $out, $err) = run_foxgov('keygen', '--kid', $kid, '--alg',
                                   'EdDSA', '--out', "$dir/keys");
    is($rc, 0, "keygen $kid") or diag($err);
}
copy("$dir/keys/auth.jwks.json", "$etc/auth-keys.jwks.json") or die $!;
copy("$dir/keys/approver.jwks.json", "$etc/approver-keys.jwks.json")
    or die $!;
copy("$dir/keys/bundle.jwks.json", "$etc/bundle-keys.jwks.json") or die $!;
($rc, $out, $err) = run_foxgov('bundle', 'build',
    "$top/conf/bundles/itsm-triage", '-o', "$etc/bundle.tar.gz", '--key',
    "$dir/keys/bundle.pem");
is($rc, 0, 'the itsm-triage bundle, signed') or diag($err);
copy("$dir/redis.password", "$etc/redis.password") or die $!;

my $mock = FoxGov::Test::Upstream->new(port => free_port(),
                                       log => "$dir/upstream.log");
$mock->start;
my $keys = $mock->credentials;
spew("$etc/credentials/openai.key", "$keys->{openai}\n");
spew("$etc/credentials/servicenow-acme.token", "$keys->{servicenow}\n");

my $gconf = slurp("$top/conf/fleet/nginx.conf");
like($gconf, qr/^\s*foxgov_redis\s+[\d.:\s]+cluster\b/m,
     'nginx.conf: foxgov_redis with cluster seeds');
like($gconf, qr/^\s*foxgov_spool\s/m, 'nginx.conf: a spool');
like($gconf, qr/^\s*foxgov_evidence\s+strict;/m, 'nginx.conf: strict');
like($gconf, qr/^\s*foxgov_metrics;/m, 'nginx.conf: metrics');

my @gw;
for my $i (1, 2) {
    my $t = FoxGov::Test::Nginx->new();
    my $d = $t->testdir();
    make_path("$d/logs", "$d/spool");
    if ($> == 0) {
        my $uid = getpwnam('nobody');
        chown $uid, -1, "$d/spool" if defined $uid;
    }

    my $module = module_path();
    my $c = move_conf($gconf,
        paths      => { '/etc/foxgov'       => $etc,
                        '/var/log/nginx'    => "$d/logs",
                        '/var/spool/foxgov' => "$d/spool" },
        module     => $module,
        harness    => $t,
        listen     => [ $t->port(8080) ],
        # the mock providers speak plain HTTP on loopback
        upstreams  => sub { $mock->port },
        plain_http => 1);
    $c =~ s{^\s*proxy_ssl_\w+\s[^;]*;\n}{}mg;     # and no TLS settings
    $c =~ s{^worker_processes \S+;}{worker_processes 2;}m;
    my $seeds = join ' ', $cluster->addrs;
    $c =~ s{(foxgov_redis\s+)[\d.:\s]+(cluster)}{$1$seeds\n$2};
    # this cluster's masters have no replica: WAIT 1 could never be
    # answered (t/gateway-redis-cluster-failover.t tests replicas=)
    my $nrep = $c =~ s{(cluster)\s+replicas=1\b}{$1};
    is($nrep, 1, "gateway $i: replicas=1 taken out (no replicas here)");
    my @left = (paths_left($c, $top, $dir, $d, $module),
                $c =~ /(10\.0\.[1-3]\.\d+)/g);
    is_deeply(\@left, [], "gateway $i: no system path or fleet address left");

    $t->write_file('nginx.conf', $c);
    my ($trc, $tout) = $t->test_config();
    is($trc, 0, "gateway $i: nginx -t accepts conf/fleet/nginx.conf")
        or diag($tout);
    $t->run();
    push @gw, $t;
}

# ------------------------------------------------------------- traffic

my @tenants = qw(acme globex initech umbrella hooli);
my %tok;
for my $tn (@tenants) {
    ($rc, $out, $err) = run_foxgov('token', 'mint', '--key',
        "$dir/keys/auth.pem", '--tenant', $tn, '--sub', 'svc-triage',
        '--ttl', '15m', '--workspace', 'itsm', '--environment', 'prod',
        '--cap', 'model:gpt-4o*', '--cap', 'tool:servicenow.incident:read');
    die "token mint: $err" if $rc;
    chomp $out;
    $tok{$tn} = $out;
}

# wait until both gateways' workers reach every master
for my $i (0, 1) {
    my $deadline = time() + 15;
    my $m = '';
    while (time() < $deadline) {
        $m = $gw[$i]->http_get('/metrics');
        last if $m =~ /^foxgov_redis_connected_workers 2$/m;
        sleep 0.1;
    }
    like($m, qr/^foxgov_redis_connected_workers 2$/m,
         'gateway ' . ($i + 1) . ': both workers reach every master');
}

my $chat = '{"model":"gpt-4o-2024-08-06","messages":'
         . '[{"role":"user","content":"triage INC0010001"}]}';
my (%served, %status);
for my $round (1 .. 3) {
    for my $tn (@tenants) {
        for my $g (@gw) {
            my $r = $g->http("POST /v1/chat/completions HTTP/1.0\r\n"
                . "Host: localhost\r\nAuthorization: Bearer $tok{$tn}\r\n"
                . "Content-Type: application/json\r\nContent-Length: "
                . length($chat) . "\r\n\r\n$chat");
            my ($st) = $r =~ m{^HTTP/1\.\d (\d+)};
            my ($x) = $r =~ /^FoxGov-Execution-Id: (\S+)\r?$/mi;
            $status{"model $st"}++;
            $served{$tn}{$x} = 'ModelCallRecord' if $x;

            $r = $g->http("GET /servicenow/api/now/table/incident"
                . "?sysparm_limit=1 HTTP/1.0\r\nHost: localhost\r\n"
                . "Authorization: Bearer $tok{$tn}\r\n\r\n");
            ($st) = $r =~ m{^HTTP/1\.\d (\d+)};
            ($x) = $r =~ /^FoxGov-Execution-Id: (\S+)\r?$/mi;
            $status{"tool $tn $st"}++;
            $served{$tn}{$x} = 'ToolCallRecord' if $x;
        }
    }
}
is($status{'model 200'}, 30, 'every model call is served (30)');
is($status{'tool acme 200'}, 6, 'acme\'s ServiceNow reads are served');
is($status{'tool globex 403'}, 6,
   'another tenant\'s are refused (the token is bound to acme), recorded');

# ------------------------------------------------------ served == recorded

sub recorded {
    my ($tn) = @_;
    my $rows = eval { $pg->psql("SELECT record_type || ' ' || execution_id "
        . "FROM foxgov.ledger WHERE tenant_id = '$tn' ORDER BY seq",
        db => 'foxgov') } // '';
    return map { [split / /] } split /\n/, $rows;
}

my $deadline = time() + 60;
my %missing;
while (1) {
    %missing = ();
    for my $tn (@tenants) {
        my %rec;
        $rec{"$_->[0] $_->[1]"}++ for recorded($tn);
        for my $x (keys %{ $served{$tn} }) {
            for my $type ('AuthContext', 'PolicyDecisionRecord',
                          $served{$tn}{$x})
            {
                $missing{$tn}++ unless $rec{"$type $x"};
            }
        }
    }
    last if !%missing || time() > $deadline;
    sleep 0.3;
}
is(scalar keys %missing, 0, 'every call served is in the ledger: its '
                            . 'AuthContext, decision and call record')
    or diag(explain \%missing);

for my $tn (@tenants) {
    my @rows = recorded($tn);
    my %twice;
    $twice{"$_->[0] $_->[1]"}++ for @rows;
    is(scalar @rows, 3 * keys %{ $served{$tn} },
       "$tn: recorded == 3 x served (" . scalar(@rows) . ' records)');
    is(scalar(grep { $_ > 1 } values %twice), 0, "$tn: none twice");
}

# the owner's part of the README: acme's auditor
{
    my ($arc, $aout, $aerr) = $pg->psql_run($owner, user => 'foxgov_ledgerd',
                                            db => 'foxgov');
    is($arc, 0, 'the README\'s auditor grants run as foxgov_ledgerd')
        or diag($aerr);
}

for my $tn (@tenants) {
    my $n = 3 * keys %{ $served{$tn} };
    my ($vrc, $vout, $verr) = run_foxgov('verify', $ledger_uri, '--tenant',
        $tn, '--trusted-key', "$dir/checkpoint.jwks.json");
    is($vrc, 0, "foxgov verify $tn: green") or diag($verr);
    like($vout, qr/verified: tenant $tn, $n records/, "$tn: $n records");
}
{
    my $auditor = $pg->uri(user => 'auditor_acme', db => 'foxgov');
    my ($vrc, $vout, $verr) = run_foxgov('verify', $auditor, '--tenant',
                                         'acme');
    is($vrc, 0, 'acme\'s auditor verifies acme\'s ledger') or diag($verr);
    my $n = 3 * keys %{ $served{acme} };
    like($vout, qr/verified: tenant acme, $n records/, 'all of it');
    my $seen = eval { $pg->psql('SELECT count(*) FROM foxgov.ledger',
                                user => 'auditor_acme', db => 'foxgov') };
    is($seen, $n, 'and sees no other tenant\'s rows');
}

# -------------------------------------------------------------- the end

for my $i (0, 1) {
    is($gw[$i]->stop, 0, 'gateway ' . ($i + 1) . ' stops');
    my @bad = grep { /\[(?:alert|emerg|crit)\]/ }
              split /\n/, slurp($gw[$i]->testdir . '/logs/foxgov-error.log');
    ok(!@bad, 'gateway ' . ($i + 1) . ': no alert') or diag(join "\n", @bad);
}

my %appended;
for my $i (0, 1) {
    kill 'TERM', $ledgerd[$i];
    my $t0 = time();
    while (waitpid($ledgerd[$i], WNOHANG) == 0 && time() - $t0 < 20) {
        sleep 0.05;
    }
    is($? >> 8, 0, 'ledgerd-' . ($i + 1) . ' stops on SIGTERM');
    my $log = slurp("$dir/ledgerd-" . ($i + 1) . '.log');
    ($appended{$i}) = $log =~ /stopping: (\d+) appended/;
    unlike($log, qr/password|$password/i, 'ledgerd-' . ($i + 1)
                                         . ': no password in its log');
}
@ledgerd = ();
my $total = 0;
$total += 3 * keys %{ $served{$_} } for @tenants;
is(($appended{0} // 0) + ($appended{1} // 0), $total,
   "the two ledgerds appended $total records between them");

$mock->stop;
$cluster->stop;
$pg->stop;
done_testing();
