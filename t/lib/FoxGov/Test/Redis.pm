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
        my @args = ('--port', $self->{port}, '--bind', '127.0.0.1',
            '--dir', $self->{dir}, '--appendonly', 'yes',
            '--appendfsync', 'always', '--save', '', '--daemonize', 'no',
            '--protected-mode', 'no',
            (defined $self->{password}
             ? ('--requirepass', $self->{password}) : ()));
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

END {
    local $?;                   # the test's exit status, not waitpid's
    for my $s (@LIVE) {
        $s->_signal('KILL') if $s->{pid};
    }
}

1;
