package FoxGov::Test::Ledgerd;

# foxgov-ledgerd for a test: run it --once and wait (run_once), or start
# it in the background (start) and stop it with SIGTERM (stop) or SIGKILL
# (kill9).  Its log (stderr) goes to a file the test can read; it is
# killed at the end of the test whatever happens.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

my $TOP = dirname(dirname(dirname(dirname(dirname(abs_path(__FILE__))))));

my @LIVE;

sub bin { return $ENV{FOXGOV_LEDGERD} // "$TOP/build/bin/foxgov-ledgerd" }

# new(redis => FoxGov::Test::Redis, ledger => 'file:DIR', log => PATH,
#     args => [more options])
sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{args} //= [];
    push @LIVE, $self;
    return $self;
}

# redis => a FoxGov::Test::Redis, or a FoxGov::Test::RedisCluster (its
# seeds given with --redis-cluster)
sub argv {
    my ($self, @more) = @_;
    my @redis = $self->{redis}->isa('FoxGov::Test::RedisCluster')
        ? ('--redis-cluster', join(',', $self->{redis}->addrs))
        : ('--redis', $self->{redis}->addr);
    return (bin(), @redis, '--ledger', $self->{ledger}, @{ $self->{args} },
            @more);
}

sub _spawn {
    my ($self, @argv) = @_;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $self->{log} or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        exec { $argv[0] } @argv or POSIX::_exit(127);
    }
    return $pid;
}

# Run with --once (and more options); its exit status, within $timeout s.
sub run_once {
    my ($self, @more) = @_;
    my $timeout = 300;
    my $pid = $self->_spawn($self->argv('--once', @more));
    my $deadline = time() + $timeout;
    while (waitpid($pid, WNOHANG) == 0) {
        if (time() > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            return -1;
        }
        sleep 0.02;
    }
    return $? >> 8;
}

sub start {
    my ($self, @more) = @_;
    $self->{pid} = $self->_spawn($self->argv(@more));
    return $self;
}

sub pid { return $_[0]{pid} }

sub running {
    my ($self) = @_;
    return 0 unless $self->{pid};
    return waitpid($self->{pid}, WNOHANG) == 0;
}

sub kill9 {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'KILL', $pid;
    waitpid $pid, 0;
}

# SIGTERM and wait (at most $timeout s): its exit status, -1 on timeout.
sub stop {
    my ($self, $timeout) = @_;
    my $pid = delete $self->{pid} or return -1;
    kill 'TERM', $pid;
    my $deadline = time() + ($timeout // 30);
    while (waitpid($pid, WNOHANG) == 0) {
        if (time() > $deadline) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            return -1;
        }
        sleep 0.02;
    }
    return $? >> 8;
}

sub log_text {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return '';
    local $/;
    return <$fh> // '';
}

END {
    for my $s (@LIVE) {
        if ($s->{pid}) {
            kill 'KILL', $s->{pid};
            waitpid $s->{pid}, 0;
        }
    }
}

1;
