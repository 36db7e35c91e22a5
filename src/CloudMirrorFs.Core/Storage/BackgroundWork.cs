using System.Runtime.InteropServices;

namespace CloudMirrorFs.Storage;

/// <summary>
/// Threads at the OS's background CPU priority for a remote's bulk work (writing a folder remote's objects), so that
/// it never delays the drive's own threads. On a machine of few cores the replicator's writes into a folder remote took
/// both cores for a scheduler tick at a time (4 ms at HZ=250) while a FUSE request, or the program waiting for its
/// reply, waited behind them: in a 512 MiB sequential write through the mount, requests waiting over 2 ms added up to
/// 143 ms of a 0.5 s run. A thread here asks for <c>SCHED_IDLE</c> on Linux, so any other thread that wakes takes the
/// core at once; elsewhere it runs at <see cref="ThreadPriority.Lowest"/>.
/// <para>
/// Work goes there only when the flow handing it over asked for it (<see cref="Until"/>, set by a replicator for a
/// batch that is keeping up): a remote that writers wait for, or one falling behind, works at normal priority, so
/// that a machine kept busy by other programs cannot starve the remote. Only the work itself runs on these threads:
/// the awaiting code resumes on the thread pool, and no lock the write path takes is held here.
/// </para>
/// </summary>
internal static partial class BackgroundWork
{
    private static readonly AsyncLocal<DateTime> s_until = new();
    private static readonly object s_lock = new(); // Monitor: idle threads wait on it
    private static readonly Queue<(Action Work, TaskCompletionSource Done)> s_queue = new();
    private static readonly int s_maxThreads = Math.Max(4, 2 * Environment.ProcessorCount);
    private static readonly SemaphoreSlim s_cores = new(CoresForCopies, CoresForCopies);
    private static int s_threads;
    private static int s_idle;
    private static long s_completed;

    [ThreadStatic]
    private static bool t_onWorker;

    /// <summary>
    /// Until when (UTC) <see cref="RunAsync"/> calls made from this asynchronous flow go to the background threads; the
    /// default (<see cref="DateTime.MinValue"/>) never. A replicator sets it per batch, to when the batch's oldest change
    /// will have waited too long: work handed over later runs at normal priority, so a landing that a busy machine
    /// starves of CPU does not go on at background priority for the rest of it.
    /// </summary>
    public static DateTime Until
    {
        get => s_until.Value;
        set => s_until.Value = value;
    }

    /// <summary>
    /// How many background threads may copy at once: all cores but one, at least one. The others may wait for a disk
    /// meanwhile (a folder remote's fsyncs), but a core is always left to the drive's own threads: a thread's priority
    /// alone did not do it. Linux's scheduler still picks an idle-priority thread when the drive's thread has had more than
    /// its share of late, and lets it run to the next tick; with a copy on each of two cores, a FUSE request's p99 was
    /// 3–5 ms, with one 1.4–1.9 ms (passthrough's: 1.0–1.8 ms).
    /// </summary>
    internal static int CoresForCopies => Math.Max(1, Environment.ProcessorCount - 1);

    /// <summary>
    /// Enters a stretch of CPU work (a copy into the page cache) on a background thread, waiting while
    /// <see cref="CoresForCopies"/> others are in one; a no-op on any other thread. Dispose to leave it.
    /// </summary>
    public static CpuStretch EnterCpuWork()
    {
        if (!t_onWorker)
        {
            return default;
        }
        s_cores.Wait();
        return new CpuStretch(true);
    }

    /// <summary>A stretch entered by <see cref="EnterCpuWork"/>.</summary>
    public readonly struct CpuStretch(bool held) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose()
        {
            if (held)
            {
                s_cores.Release();
            }
        }
    }

    /// <summary>Tests: background threads inside a stretch of CPU work now.</summary>
    internal static int InCpuWork => CoresForCopies - s_cores.CurrentCount;

    /// <summary>Tests: work items the background threads have run.</summary>
    internal static long Completed => Interlocked.Read(ref s_completed);

    /// <summary>Tests: whether the current thread is a background one.</summary>
    internal static bool OnBackgroundThread => t_onWorker;

    /// <summary>
    /// Runs <paramref name="work"/>: on a background thread before <see cref="Until"/> (the task completes there, its
    /// continuations run on the thread pool), otherwise at once on this thread, throwing as it throws.
    /// </summary>
    public static Task RunAsync(Action work)
    {
        if (t_onWorker || DateTime.UtcNow >= s_until.Value)
        {
            work();
            return Task.CompletedTask;
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool start = false;
        lock (s_lock)
        {
            s_queue.Enqueue((work, done));
            if (s_idle > 0)
            {
                Monitor.Pulse(s_lock);
            }
            // A pulsed thread counts as idle until it has run: more work waiting than idle threads to take it starts one.
            if (s_queue.Count > s_idle && s_threads < s_maxThreads)
            {
                s_threads++;
                start = true;
            }
        }
        if (start)
        {
            new Thread(Work) { IsBackground = true, Name = "cmfs-background" }.Start();
        }
        return done.Task;
    }

    private static void Work()
    {
        t_onWorker = true;
        LowerPriority();
        while (true)
        {
            (Action work, TaskCompletionSource done) item;
            lock (s_lock)
            {
                while (s_queue.Count == 0)
                {
                    s_idle++;
                    Monitor.Wait(s_lock);
                    s_idle--;
                }
                item = s_queue.Dequeue();
            }
            Exception? failed = null;
            try
            {
                item.work();
            }
            catch (Exception e)
            {
                failed = e;
            }
            Interlocked.Increment(ref s_completed); // before the awaiting code can look
            if (failed is null)
            {
                item.done.SetResult();
            }
            else
            {
                item.done.SetException(failed);
            }
        }
    }

    private static void LowerPriority()
    {
        if (OperatingSystem.IsLinux())
        {
            var param = new SchedParam();
            _ = SchedSetScheduler(0, SchedIdle, ref param); // refused (a sandbox's filter): normal priority, as before
        }
        else
        {
            Thread.CurrentThread.Priority = ThreadPriority.Lowest;
        }
    }

    /// <summary>Linux's SCHED_IDLE policy: runs only when no other thread wants the core.</summary>
    internal const int SchedIdle = 5;

    [StructLayout(LayoutKind.Sequential)]
    private struct SchedParam
    {
        public int Priority;
    }

    [LibraryImport("libc", EntryPoint = "sched_setscheduler", SetLastError = true)]
    private static partial int SchedSetScheduler(int pid, int policy, ref SchedParam param);

    /// <summary>Tests: the scheduling policy of the calling thread (sched_getscheduler(0)).</summary>
    [LibraryImport("libc", EntryPoint = "sched_getscheduler", SetLastError = true)]
    internal static partial int CurrentPolicy(int pid = 0);
}
