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
    private static readonly Queue<Item> s_queue = new();
    private static Timer? s_rescuer;
    private static readonly int s_maxThreads = Math.Max(4, 2 * Environment.ProcessorCount);
    private static readonly SemaphoreSlim s_cores = new(CoresForCopies, CoresForCopies);
    private static int s_threads;
    private static int s_idle;
    private static long s_completed;
    private static long s_rescued;

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
            s_queue.Enqueue(new Item(work, done, s_until.Value));
            s_rescuer ??= new Timer(static _ => Rescue(), null, RescueEvery, RescueEvery);
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

    /// <summary>How often work still waiting for a background thread past its deadline is handed to the thread pool.</summary>
    internal static readonly TimeSpan RescueEvery = TimeSpan.FromMilliseconds(250);

    /// <summary>Tests: work items the background threads have run.</summary>
    internal static long Completed => Interlocked.Read(ref s_completed);

    /// <summary>Tests: work items that waited past their deadline and ran on the thread pool instead.</summary>
    internal static long Rescued => Interlocked.Read(ref s_rescued);

    /// <summary>Tests: the most background threads there can be.</summary>
    internal static int MaxThreads => s_maxThreads;

    /// <summary>
    /// Hands work that waited past its deadline to the thread pool, at normal priority. A machine whose cores other
    /// programs keep busy gives idle-priority threads next to nothing: without this, what a landing queued before its
    /// deadline would wait for them however long the machine stays busy, and the replicator with it.
    /// </summary>
    private static void Rescue()
    {
        List<Item>? late = null;
        lock (s_lock)
        {
            DateTime now = DateTime.UtcNow;
            for (int i = s_queue.Count; i > 0; i--)
            {
                Item item = s_queue.Dequeue();
                if (item.Until <= now)
                {
                    (late ??= []).Add(item);
                }
                else
                {
                    s_queue.Enqueue(item);
                }
            }
        }
        foreach (Item item in late ?? [])
        {
            ThreadPool.UnsafeQueueUserWorkItem(static item =>
            {
                Interlocked.Increment(ref s_rescued);
                Execute(item);
            }, item, preferLocal: false);
        }
    }

    private static void Work()
    {
        t_onWorker = true;
        LowerPriority();
        while (true)
        {
            Item item;
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
            Interlocked.Increment(ref s_completed); // before the awaiting code can look
            Execute(item);
        }
    }

    private static void Execute(Item item)
    {
        try
        {
            item.Work();
        }
        catch (Exception e)
        {
            item.Done.SetException(e);
            return;
        }
        item.Done.SetResult();
    }

    /// <summary>A piece of work, the task its caller awaits, and until when it may wait for a background thread.</summary>
    private readonly record struct Item(Action Work, TaskCompletionSource Done, DateTime Until);

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
