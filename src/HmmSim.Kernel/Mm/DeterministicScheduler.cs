namespace HmmSim.Kernel;

/// <summary>A deterministic scheduler over the model's sleeping locks, so one seed replays one
/// interleaving exactly. The threads it runs take turns: exactly one runs at a time, and it hands the
/// CPU on only at a scheduling point — taking or dropping mmap_lock, taking a folio lock, and the
/// explicit points of <see cref="Point"/> — where the kernel itself may sleep. Which thread runs next
/// is drawn from a seeded generator (or read from a recorded list of choices), and every choice is
/// recorded, so a run is replayed by handing its <see cref="Choices"/> to a new scheduler. A contended
/// sleeping lock yields instead of blocking; spinlocks (the PTL, the anon_vma and driver locks) are
/// never held across a point, so they are never contended under the scheduler. Threads not started
/// by <see cref="Run"/> (and runs without a scheduler) see plain locks.</summary>
internal sealed class DeterministicScheduler : IDisposable
{
    [ThreadStatic] private static DeterministicScheduler? _current;
    [ThreadStatic] private static int _threadId;

    private readonly Random? _rng;
    private readonly IReadOnlyList<int>? _replay;
    private readonly List<int> _choices = [];
    private readonly List<string> _trace = [];
    private SemaphoreSlim[] _turn = [];
    private bool[] _done = [];
    private bool[] _blocked = [];
    private readonly ManualResetEventSlim _finished = new();

    /// <summary>The scheduler running the current thread, or null.</summary>
    public static DeterministicScheduler? Current => _current;

    /// <summary>Choices drawn from <paramref name="seed"/>.</summary>
    public DeterministicScheduler(int seed) => _rng = new Random(seed);

    /// <summary>Replays a recorded run: the same choices, in order.</summary>
    public DeterministicScheduler(IReadOnlyList<int> choices) => _replay = choices;

    /// <summary>The thread chosen at each scheduling point, in order: the interleaving.</summary>
    public IReadOnlyList<int> Choices => _choices;

    /// <summary>Each point as "tN what", in the order the threads reached them.</summary>
    public IReadOnlyList<string> Trace => _trace;

    /// <summary>Runs the bodies as threads 0..n-1 under the scheduler; returns each one's exception (or
    /// null). Throws if every live thread is blocked on a sleeping lock (a deadlock) or the run outlasts
    /// <paramref name="timeout"/>.</summary>
    public Exception?[] Run(TimeSpan timeout, params Action[] bodies)
    {
        int n = bodies.Length;
        _turn = new SemaphoreSlim[n];
        _done = new bool[n];
        _blocked = new bool[n];
        var errors = new Exception?[n];
        var threads = new Thread[n];
        for (int i = 0; i < n; i++)
        {
            int id = i;
            _turn[i] = new SemaphoreSlim(0);
            threads[i] = new Thread(() =>
            {
                _current = this;
                _threadId = id;
                _turn[id].Wait();
                try
                {
                    bodies[id]();
                }
                catch (Exception e)
                {
                    errors[id] = e;
                }
                finally
                {
                    _current = null;
                    _trace.Add($"t{id} exit");
                    _done[id] = true;
                    Array.Clear(_blocked);   // it may have left locks others wait for
                    int next = Choose();
                    if (next < 0)
                        _finished.Set();
                    else
                        _turn[next].Release();
                }
            })
            { IsBackground = true, Name = $"sched-{id}" };
            threads[i].Start();
        }
        _turn[Choose()].Release();
        if (!_finished.Wait(timeout))
            throw new TimeoutException($"deterministic run did not finish in {timeout.TotalSeconds:F0} s; last points: {string.Join(", ", _trace.TakeLast(8))}");
        foreach (var t in threads)
            t.Join();
        if (_deadlock is not null)
            throw new InvalidOperationException(_deadlock);
        return errors;
    }

    private string? _deadlock;

    public void Dispose()
    {
        _finished.Dispose();
        foreach (var t in _turn)
            t.Dispose();
    }

    /// <summary>A scheduling point: another thread may run before this one goes on.</summary>
    public void Point(string what)
    {
        int me = _threadId;
        _trace.Add($"t{me} {what}");
        Array.Clear(_blocked);
        SwitchFrom(me);
    }

    /// <summary>The current thread could not take a sleeping lock: run another (it retries when it is
    /// chosen again, after some other thread reached a point).</summary>
    public void Blocked(string what)
    {
        int me = _threadId;
        _trace.Add($"t{me} blocked on {what}");
        _blocked[me] = true;
        bool anyRunnable = false;
        for (int i = 0; i < _done.Length; i++)
            anyRunnable |= !_done[i] && !_blocked[i];
        if (!anyRunnable)
        {
            _deadlock = $"deadlock: every live thread is blocked; last points: {string.Join(", ", _trace.TakeLast(8))}";
            _finished.Set();
            Thread.Sleep(Timeout.Infinite);   // a background thread: the run reports the deadlock
        }
        SwitchFrom(me);
    }

    private void SwitchFrom(int me)
    {
        int next = Choose();
        if (next == me)
            return;
        _turn[next].Release();
        _turn[me].Wait();
    }

    /// <summary>The next thread to run among the live, unblocked ones; -1 when all are done.</summary>
    private int Choose()
    {
        Span<int> eligible = stackalloc int[_done.Length];
        int count = 0;
        for (int i = 0; i < _done.Length; i++)
            if (!_done[i] && !_blocked[i])
                eligible[count++] = i;
        if (count == 0)
            return -1;
        int pick;
        if (_replay is not null)
        {
            int step = _choices.Count;
            if (step >= _replay.Count || eligible[..count].IndexOf(_replay[step]) < 0)
                throw new InvalidOperationException($"replay diverged at choice {step}: recorded {(step < _replay.Count ? _replay[step] : -1)}, runnable {string.Join(",", eligible[..count].ToArray())}");
            pick = _replay[step];
        }
        else
            pick = eligible[_rng!.Next(count)];
        _choices.Add(pick);
        return pick;
    }
}
