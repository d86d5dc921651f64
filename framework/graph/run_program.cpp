#include "framework/graph/run_program.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

extern char** environ;  // NOLINT: POSIX declares it nowhere

namespace blocks::graph {

namespace {

class Fd {
 public:
  Fd() = default;
  ~Fd() { close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void reset(int fd) {
    close();
    fd_ = fd;
  }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read, write;
  int make() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return errno;
    read.reset(fds[0]);
    write.reset(fds[1]);
    return 0;
  }
};

// SIGPIPE blocked in this thread while the child's input is written: a child that exits before
// reading it all gives EPIPE instead of ending blockc. A SIGPIPE raised meanwhile is consumed
// before the old mask comes back; the child itself starts with the old mask and SIGPIPE default.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlocked() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      const timespec now{0, 0};
      sigtimedwait(&pipe_, nullptr, &now);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
  const sigset_t& old() const { return old_; }
  const sigset_t& pipe() const { return pipe_; }

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

// Starts the program with the pipes' far ends as its stdin, stdout and stderr; an errno on failure.
int spawn(const std::vector<std::string>& argv, Pipe& in, Pipe& out, Pipe& err,
          const SigpipeBlocked& signals, pid_t& pid) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on 0, 1 and 2; every pipe end itself closes on exec.
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setsigmask(&attributes, &signals.old());
  posix_spawnattr_setsigdefault(&attributes, &signals.pipe());
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int status = ::posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  return status;
}

// Reads what is there into `text`; closes `fd` at the end of the stream or on an error.
void drain(Fd& fd, std::string& text) {
  char buffer[1 << 16];
  const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
  if (n > 0)
    text.append(buffer, static_cast<size_t>(n));
  else if (n == 0 || (errno != EINTR && errno != EAGAIN))
    fd.close();
}

// Feeds `input` and collects both outputs until the program closes them or the deadline passes;
// false on the time-out.
bool exchange(Fd& in, Fd& out, Fd& err, std::string_view input, ProgramRun& run,
              std::chrono::steady_clock::time_point deadline) {
  size_t written = 0;
  if (input.empty()) in.close();
  while (out.open() || err.open()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fds[3];
    nfds_t n = 0;
    Fd* owners[3];
    auto watch = [&](Fd& fd, short events) {
      if (!fd.open()) return;
      fds[n] = {fd.get(), events, 0};
      owners[n++] = &fd;
    };
    watch(in, POLLOUT);
    watch(out, POLLIN);
    watch(err, POLLIN);
    const int ready = ::poll(fds, n, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (ready < 0 && errno != EINTR) return false;
    for (nfds_t i = 0; ready > 0 && i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (owners[i] == &in) {
        const size_t chunk = std::min<size_t>(input.size() - written, 1 << 16);
        const ssize_t w = ::write(in.get(), input.data() + written, chunk);
        if (w > 0) written += static_cast<size_t>(w);
        if (written == input.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) in.close();
      } else {
        drain(*owners[i], owners[i] == &out ? run.out : run.err);
      }
    }
  }
  return true;
}

// The program's wait status; it is killed at the deadline (a program that closed its outputs
// may still run on).
int wait_for(pid_t pid, std::chrono::steady_clock::time_point deadline, bool& timed_out) {
  int status = 0;
  if (!timed_out) {
    while (true) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid || (done < 0 && errno != EINTR)) return status;
      if (std::chrono::steady_clock::now() >= deadline) break;
      ::usleep(5000);
    }
    timed_out = true;
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

ProgramRun run_program(const std::vector<std::string>& argv, std::string_view input,
                       std::chrono::milliseconds timeout) {
  ProgramRun run;
  Pipe in, out, err;
  for (Pipe* p : {&in, &out, &err})
    if (int e = p->make()) {
      run.start_error = e;
      return run;
    }
  SigpipeBlocked signals;
  pid_t pid = 0;
  run.start_error = spawn(argv, in, out, err, signals, pid);
  in.read.close();
  out.write.close();
  err.write.close();
  if (run.start_error != 0) return run;
  ::fcntl(in.write.get(), F_SETFL, O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  run.timed_out = !exchange(in.write, out.read, err.read, input, run, deadline);
  in.write.close();
  out.read.close();
  err.read.close();
  const int status = wait_for(pid, deadline, run.timed_out);
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  return run;
}

}  // namespace blocks::graph
