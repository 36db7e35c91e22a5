namespace CloudMirrorFs.Storage;

/// <summary>
/// Threads of their own for a remote's bulk work (writing a folder remote's objects) while the replicator keeps up,
/// whose copies take turns on all cores but one (<see cref="EnterCpuWork"/>), so that the drive's own threads always
/// find a core. On a machine of few cores the replicator's writes into a folder remote, one per thread-pool thread,
/// took both cores for a scheduler tick at a time (4 ms at HZ=250) while a FUSE request, or the program waiting for its
/// reply, waited behind them: in a 512 MiB sequential write through the mount, replies more than 2 ms late added up to
/// 143 ms of a 0.5 s run, and the writer's p99 was 3–5 ms against passthrough's 1.0–1.8 ms.
/// <para>
/// Work goes there only while the flow handing it over asks for it (<see cref="KeepFor"/>, set by a replicator for a
/// batch that is keeping up); otherwise, and once that time is up, it runs at once on the caller's thread, as many at
/// a time as the caller starts: a remote that writers wait for, or one falling behind, catches up with every core. Work
/// still waiting here when its time is up is handed to the thread pool (<see cref="Rescue"/>). Only the work itself runs
/// on these threads: the awaiting code resumes on the thread pool.
/// </para>
/// <para>
/// The threads run at normal priority. <c>SCHED_IDLE</c> was tried: no better measurably once the copies were limited,
/// and a thread the OS rarely runs holds up every garbage collection of the process (the runtime stops all managed
/// threads at a safe point) on a machine that other programs keep busy.
/// </para>
/// </summary>
internal static class BackgroundWork
{
    private static readonly AsyncLocal<long> s_until = new(); // Environment.TickCount64; 0: not asked
    private static readonly object s_lock = new(); // Monitor: idle threads wait on it
    private static readonly Queue<Item> s_queue = new();
    private static readonly int s_maxThreads = Math.Max(4, 2 * Environment.ProcessorCount);
    private static readonly SemaphoreSlim s_cores = new(CoresForCopies, CoresForCopies);
    private static Timer? s_rescuer;
    private static int s_threads;
    private static int s_idle;
    private static long s_taken;
    private static long s_rescued;

    [ThreadStatic]
    private static bool t_onWorker;

    /// <summary>
    /// Asks that <see cref="RunAsync"/> calls made from this asynchronous flow, for <paramref name="time"/> from now (on
    /// the monotonic clock), go to the background threads; zero or less: not at all. A replicator sets it per batch.
    /// </summary>
    public static void KeepFor(TimeSpan time)
        => s_until.Value = time > TimeSpan.Zero ? Environment.TickCount64 + Math.Max(1, (long)time.TotalMilliseconds) : 0;

    /// <summary>Whether <see cref="RunAsync"/> called now from this flow would hand its work to a background thread.</summary>
    internal static bool Asked => s_until.Value != 0 && Environment.TickCount64 < s_until.Value;

    /// <summary>
    /// How many background threads may copy at once: all cores but one, at least one. The others may wait for a disk
    /// meanwhile (a folder remote's fsyncs). With a copy on each of two cores, a FUSE request's p99 was 3–5 ms; with
    /// one, 1.3–2.1 ms in most runs.
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

    /// <summary>Tests: work items the background threads have taken.</summary>
    internal static long Taken => Interlocked.Read(ref s_taken);

    /// <summary>Tests: work items that were still waiting when their time was up and ran on the thread pool instead.</summary>
    internal static long Rescued => Interlocked.Read(ref s_rescued);

    /// <summary>Tests: the most background threads there can be.</summary>
    internal static int MaxThreads => s_maxThreads;

    /// <summary>Tests: whether the current thread is a background one.</summary>
    internal static bool OnBackgroundThread => t_onWorker;

    /// <summary>How often work still waiting for a background thread past its time is handed to the thread pool.</summary>
    internal static readonly TimeSpan RescueEvery = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Runs <paramref name="work"/>: on a background thread while this flow asks for it (the task completes there, its
    /// continuations run on the thread pool), otherwise at once on this thread, throwing as it throws.
    /// </summary>
    public static Task RunAsync(Action work)
    {
        if (t_onWorker || !Asked)
        {
            work();
            return Task.CompletedTask;
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool start = false;
        lock (s_lock)
        {
            s_queue.Enqueue(new Item(work, done, s_until.Value));
            if (s_rescuer is null)
            {
                using (ExecutionContext.SuppressFlow()) // the timer lives on: it must not keep this flow's values
                {
                    s_rescuer = new Timer(static _ => Rescue(), null, RescueEvery, RescueEvery);
                }
            }
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
            try
            {
                new Thread(Work) { IsBackground = true, Name = "cmfs-background" }.UnsafeStart(); // no flow of the first caller's values
            }
            catch
            {
                lock (s_lock)
                {
                    s_threads--; // the work stays queued: another thread, or the rescue, runs it
                }
            }
        }
        return done.Task;
    }

    /// <summary>
    /// Hands work that was still waiting for a background thread when its time was up to the thread pool: a landing
    /// that falls behind (the copies of one core are not enough, or the disk is slow) catches up with every core.
    /// </summary>
    private static void Rescue()
    {
        List<Item>? late = null;
        lock (s_lock)
        {
            long now = Environment.TickCount64;
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
            Interlocked.Increment(ref s_taken); // before the awaiting code can look
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

    /// <summary>A piece of work, the task its caller awaits, and until when (<see cref="Environment.TickCount64"/>) it may wait here.</summary>
    private readonly record struct Item(Action Work, TaskCompletionSource Done, long Until);
}
