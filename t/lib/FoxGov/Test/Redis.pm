package FoxGov::Test::Redis;

# A real redis-server for a test: on a loopback port, in a temp dir, with
# the durability the quickstart uses (appendonly, appendfsync always), so
# a SIGKILL and a restart keep what it acknowledged.  Stopped at the end
# of the test whatever happens.

use strict;
use warnings;

use FoxGov::Test::Fixtures qw(free_port);

use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Redis;
use Time::HiRes qw(sleep time);

my @LIVE;

sub new {
    my ($class, %o) = @_;

    my $self = bless {
        dir  => $o{dir} // tempdir('foxgov-redis-XXXXXXXX', TMPDIR => 1,
                                   CLEANUP => 1),
        port => $o{port} // free_port(),
        password => $o{password},
        args => $o{args} // [],         # more redis-server arguments
        conf => $o{conf},               # a config file to start from
        bare => $o{bare},               # the config file only: it says
                                        # port, bind, dir, durability
    }, $class;
    push @LIVE, $self;
    return $self;
}

sub port { return $_[0]{port} }
sub dir  { return $_[0]{dir} }
sub addr { return "127.0.0.1:$_[0]{port}" }

sub start {
    my ($self) = @_;

    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>>', "$self->{dir}/redis.out";
        open STDERR, '>&', \*STDOUT;
        exec { 'redis-server' } 'redis-server', $self->{conf},
            '--daemonize', 'no' or POSIX::_exit(127) if $self->{bare};
        my @args = ((defined $self->{conf} ? ($self->{conf}) : ()),
            '--port', $self->{port}, '--bind', '127.0.0.1',
            '--dir', $self->{dir}, '--appendonly', 'yes',
            '--appendfsync', 'always', '--save', '', '--daemonize', 'no',
            '--protected-mode', 'no',
            (defined $self->{password}
             ? ('--requirepass', $self->{password}) : ()),
            @{ $self->{args} });
        exec { 'redis-server' } 'redis-server', @args or POSIX::_exit(127);
    }
    $self->{pid} = $pid;

    my $deadline = time() + 10;
    while (time() < $deadline) {
        my $r = eval { $self->client };
        if ($r && eval { $r->ping }) {
            $r->quit;
            return $self;
        }
        die "redis-server exited" if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    die "redis-server did not start on $self->{port}";
}

# A fake Redis node for hostile replies: fake_node(sub { my (@argv) = @_;
# return the raw RESP reply }, port => P, timeout => S) listens on a
# loopback port (P, or any), answers every command of every connection
# with what the sub returns, and exits after S (60) seconds.  Returns
# (pid, port); kill it with KILL.
sub fake_node {
    my ($answer, %o) = @_;
    my $timeout = $o{timeout};
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $o{port} // 0, Listen => 16, ReuseAddr => 1)
        or die "listen: $!";
    my $port = $listen->sockport;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid) {
        close $listen;
        return ($pid, $port);
    }
    require IO::Select;
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm($timeout // 60);
    my $sel = IO::Select->new($listen);
    my %buf;
    while (1) {
        for my $fh ($sel->can_read(1)) {
            if ($fh == $listen) {
                my $c = $listen->accept or next;
                $sel->add($c);
                next;
            }
            my $n = sysread($fh, my $chunk, 65536);
            if (!$n) { $sel->remove($fh); close $fh; next }
            $buf{$fh} .= $chunk;
            # whole commands: *N then N bulk strings
            while ($buf{$fh} =~ /\A\*(\d+)\r\n/) {
                my ($argc, $pos, @a) = ($1, length($&));
                my $ok = 1;
                for (1 .. $argc) {
                    my $rest = substr($buf{$fh}, $pos);
                    if ($rest =~ /\A\$(\d+)\r\n/
                        && length($rest) >= length($&) + $1 + 2)
                    {
                        push @a, substr($rest, length($&), $1);
                        $pos += length($&) + $1 + 2;
                    } else {
                        $ok = 0;
                        last;
                    }
                }
                last unless $ok;
                substr($buf{$fh}, 0, $pos) = '';
                syswrite($fh, $answer->(@a));
            }
        }
    }
}


# SIGKILL (kill(9)) or SIGTERM (stop): it is gone when this returns.
sub kill9 { $_[0]->_signal('KILL') }
sub stop  { $_[0]->_signal('TERM') }

sub _signal {
    my ($self, $sig) = @_;
    my $pid = delete $self->{pid} or return;
    kill $sig, $pid;
    waitpid $pid, 0;
}

sub client {
    my ($self, $db) = @_;
    my $r = Redis->new(server => $self->addr, reconnect => 0,
                       cnx_timeout => 2, read_timeout => 5,
                       (defined $self->{password}
                        ? (password => $self->{password}) : ()));
    $r->select($db) if $db;
    return $r;
}

# The entries of a tenant's stream: [{id, t, h, r, o}, ...], oldest first
# (in database $db, 0 by default).
sub entries {
    my ($self, $tenant, $db) = @_;
    my $r = $self->client($db);
    my @out;
    for my $e (@{ [ $r->xrange("foxgov:ev:{$tenant}", '-', '+') ] }) {
        my ($id, $fields) = @$e;
        my %f = @$fields;
        push @out, { id => $id, %f };
    }
    $r->quit;
    return @out;
}

# A tenant's records by execution id: { exec => { type => [entries] } },
# each entry with its decoded record under rec.
sub by_execution {
    my ($self, $tenant, $db) = @_;
    my $json = JSON::PP->new->utf8;
    my %by;
    for my $e ($self->entries($tenant, $db)) {
        my $rec = eval { $json->decode($e->{r}) } or next;
        push @{ $by{ $rec->{execution_id} }{ $e->{t} } }, { %$e, rec => $rec };
    }
    return \%by;
}

# Wait (at most $timeout s) until each model call of @ids has its
# AuthContext, PolicyDecisionRecord and ModelCallRecord in the tenant's
# stream.  Returns (by_execution, the number of calls still missing one).
sub wait_calls {
    my ($self, $tenant, $timeout, @ids) = @_;
    my $deadline = time() + $timeout;
    while (1) {
        my $by = $self->by_execution($tenant);
        my $missing = grep {
            my $x = $by->{$_};
            !($x && $x->{AuthContext} && $x->{PolicyDecisionRecord}
              && $x->{ModelCallRecord})
        } @ids;
        return ($by, $missing) if !$missing || time() >= $deadline;
        sleep 0.1;
    }
}

# How many calls of @ids have a record in the stream more than once.
sub twice {
    my ($by, @ids) = @_;
    return scalar grep { my $x = $by->{$_} // {};
                         grep { @{ $x->{$_} } > 1 } keys %$x } @ids;
}

# ------------------------------------------------------------ a cluster

package FoxGov::Test::RedisCluster;

# A real Redis Cluster of $o{masters} (3) masters on loopback ports, each a
# FoxGov::Test::Redis in its own temp dir (cluster-enabled, appendonly,
# appendfsync always), made with redis-cli --cluster create and waited for
# until every node says cluster_state:ok.  cluster-require-full-coverage
# is off (as conf/fleet/redis.conf has it): a master down stops its own
# slots only.

use File::Temp qw(tempdir);
use Redis;
use Time::HiRes qw(sleep time);

# new(masters => 3, replicas => 0, node_timeout => ms, args => [...]), or
# new(nodes => [FoxGov::Test::Redis, ...], password => P): nodes made by
# the caller (from a config file of its own).
sub new {
    my ($class, %o) = @_;
    my $self = bless { nodes => [], masters => $o{masters} // 3,
                       replicas => $o{replicas} // 0,
                       password => $o{password} }, $class;
    if ($o{nodes}) {
        $self->{nodes} = $o{nodes};
        return $self;
    }
    my %taken;
    for my $i (1 .. $self->{masters} * (1 + $self->{replicas})) {
        my $dir = tempdir('foxgov-rcl-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
        my $port = cluster_port(\%taken);
        push @{ $self->{nodes} }, FoxGov::Test::Redis->new(
            dir => $dir, conf => $o{conf}, port => $port,
            args => [ '--cluster-enabled', 'yes',
                      '--cluster-config-file', "$dir/nodes.conf",
                      '--cluster-node-timeout', $o{node_timeout} // 2000,
                      '--cluster-require-full-coverage', 'no',
                      # a replica's first sync at once, not after 5 s
                      '--repl-diskless-sync-delay', '0',
                      @{ $o{args} // [] } ]);
    }
    return $self;
}

# A free port whose cluster bus port (+10000) is free too, neither of
# them one of the ports or bus ports already taken.
sub cluster_port {
    my ($taken) = @_;
    for (1 .. 200) {
        my $p = FoxGov::Test::Fixtures::free_port();
        next if $p > 55000 || $taken->{$p} || $taken->{ $p + 10000 };
        my $bus = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => $p + 10000, Listen => 1, ReuseAddr => 1) or next;
        close $bus;
        $taken->{$p} = $taken->{ $p + 10000 } = 1;
        return $p;
    }
    die 'no free port pair for a cluster node';
}

sub nodes { return @{ $_[0]{nodes} } }
sub node  { return $_[0]{nodes}[$_[1]] }
sub addrs { return map { $_->addr } @{ $_[0]{nodes} } }

sub start {
    my ($self) = @_;
    $_->start for $self->nodes;
    local $ENV{REDISCLI_AUTH} = $self->{password} if $self->{password};
    my $out = `redis-cli --cluster create @{[ $self->addrs ]} --cluster-replicas @{[ $self->{replicas} // 0 ]} --cluster-yes 2>&1`;
    die "redis-cli --cluster create: $out" if $?;
    $self->wait_ok(20) or die "the cluster is not ok";
    return $self;
}

# Wait until every running node says cluster_state:ok and sees every slot,
# and every running replica has finished its sync with its master.
sub wait_ok {
    my ($self, $timeout) = @_;
    my $deadline = time() + ($timeout // 20);
    while (time() < $deadline) {
        my $ok = 1;
        for my $n ($self->nodes) {
            next unless $n->{pid};
            my ($info, $repl) = eval {
                my $r = $n->client;
                my @i = ($r->cluster('info'), scalar $r->info('replication'));
                $r->quit;
                @i;
            };
            $info //= '';
            $ok = 0 unless $info =~ /cluster_state:ok/
                && $info =~ /cluster_slots_assigned:16384/;
            $ok = 0 if ref $repl && ($repl->{role} // '') eq 'slave'
                && ($repl->{master_link_status} // '') ne 'up';
        }
        return 1 if $ok;
        sleep 0.1;
    }
    return 0;
}

# Redis Cluster's CRC16 (XMODEM) of a hash tag, and its slot.
sub slot_of {
    my ($tag) = @_;
    my $crc = 0;
    for my $c (unpack 'C*', $tag) {
        $crc ^= $c << 8;
        for (1 .. 8) {
            $crc = ($crc & 0x8000) ? (($crc << 1) ^ 0x1021) : ($crc << 1);
            $crc &= 0xffff;
        }
    }
    return $crc & 16383;
}

# The node (a FoxGov::Test::Redis) owning a tenant's stream, from the
# CLUSTER SLOTS of the first node that answers.
sub owner {
    my ($self, $tenant) = @_;
    my $slot = slot_of($tenant);
    for my $n ($self->nodes) {
        next unless $n->{pid};
        my $map = eval { my $r = $n->client; my $m = [ $r->cluster('slots') ];
                         $r->quit; $m } or next;
        for my $range (@$map) {
            next unless $slot >= $range->[0] && $slot <= $range->[1];
            my $port = $range->[2][1];
            my ($o) = grep { $_->port == $port } $self->nodes;
            return $o;
        }
    }
    return undef;
}

# The replicas of a master (FoxGov::Test::Redis nodes), from CLUSTER
# REPLICAS (CLUSTER SLOTS leaves out a replica that has no data yet).
sub replicas_of {
    my ($self, $master) = @_;
    my $id = node_id($master);
    for my $n ($self->nodes) {
        next unless $n->{pid};
        my @lines = eval { my $r = $n->client;
                           my @l = $r->cluster('replicas', $id);
                           $r->quit; @l } or next;
        my %ports = map { /^\S+ [\d.]+:(\d+)@/ ? ($1 => 1) : () } @lines;
        return grep { $ports{ $_->port } } $self->nodes;
    }
    return ();
}

# The entries of a tenant's stream on the node that owns it.
sub entries {
    my ($self, $tenant) = @_;
    my $o = $self->owner($tenant) or return ();
    return $o->entries($tenant);
}

# Wait (at most $timeout s) until each model call of $calls ({execution
# id => tenant}) has its AuthContext, PolicyDecisionRecord and
# ModelCallRecord in its tenant's stream, on the node that owns it.
# Returns the execution ids still missing one.
sub wait_recorded {
    my ($self, $calls, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    my @missing;
    while (1) {
        my %by;
        my %tenants = map { $_ => 1 } values %$calls;
        for my $t (keys %tenants) {
            for my $e ($self->entries($t)) {
                my ($x) = $e->{r} =~ /"execution_id":"([^"]+)"/;
                $by{$x}{ $e->{t} } = 1 if $x;
            }
        }
        @missing = grep { my $x = $by{$_} // {};
                          !($x->{AuthContext} && $x->{PolicyDecisionRecord}
                            && $x->{ModelCallRecord}) } keys %$calls;
        return @missing if !@missing || Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.2);
    }
}

# Tenants (of @tenants) whose stream is on each node: { port => [..] }.
sub spread {
    my ($self, @tenants) = @_;
    my %by;
    push @{ $by{ $self->owner($_)->port } }, $_ for @tenants;
    return \%by;
}

sub node_id {
    my ($n) = @_;
    my $r = $n->client;
    my $id = $r->cluster('myid');
    $r->quit;
    return $id;
}

# Move one slot from node $from to node $to, its keys with MIGRATE, as
# redis-cli --cluster reshard does (IMPORTING, MIGRATING, keys, NODE).
# $between (a code ref) runs after the first batch of keys moved.
sub migrate_slot {
    my ($self, $slot, $from, $to, $between) = @_;
    my ($fid, $tid) = (node_id($from), node_id($to));
    my $rf = $from->client;
    my $rt = $to->client;
    $rt->cluster('setslot', $slot, 'importing', $fid);
    $rf->cluster('setslot', $slot, 'migrating', $tid);
    my $first = 1;
    while (1) {
        my @keys = $rf->cluster('getkeysinslot', $slot, 1);
        last unless @keys;
        $rf->migrate('127.0.0.1', $to->port, '', 0, 5000, 'KEYS', @keys);
        if ($first && $between) { $between->(); $first = 0 }
    }
    $between->() if $first && $between;
    $rt->cluster('setslot', $slot, 'node', $tid);
    $rf->cluster('setslot', $slot, 'node', $tid);
    for my $n ($self->nodes) {
        next unless $n->{pid} && $n != $from && $n != $to;
        my $r = $n->client;
        $r->cluster('setslot', $slot, 'node', $tid);
        $r->quit;
    }
    $rf->quit;
    $rt->quit;
}

sub stop {
    my ($self) = @_;
    $_->stop for $self->nodes;
}

package FoxGov::Test::Redis;

END {
    local $?;                   # the test's exit status, not waitpid's
    for my $s (@LIVE) {
        $s->_signal('KILL') if $s->{pid};
    }
}

1;
