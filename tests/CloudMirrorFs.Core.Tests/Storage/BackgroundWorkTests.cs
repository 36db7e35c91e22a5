using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Tests.Storage;

[TestClass]
public sealed class BackgroundWorkTests
{
    [TestMethod]
    public void NotAsked_OrPastTheDeadline_RunsOnTheCallingThread_AndThrowsAsItThrows()
    {
        foreach (DateTime until in new[] { default, DateTime.UtcNow.AddSeconds(-1) })
        {
            BackgroundWork.Until = until;
            int caller = Environment.CurrentManagedThreadId, ran = 0;
            Task t = BackgroundWork.RunAsync(() => ran = Environment.CurrentManagedThreadId);
            Assert.IsTrue(t.IsCompletedSuccessfully);
            Assert.AreEqual(caller, ran, $"until {until:O}");
            Assert.ThrowsExactly<IOException>(() => BackgroundWork.RunAsync(() => throw new IOException("disk")));
        }
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task BeforeTheDeadline_RunsOnAThreadAtIdlePriority_ThenResumesOffIt()
    {
        BackgroundWork.Until = DateTime.UtcNow.AddMinutes(5);
        bool onBackground = false;
        int policy = -1;
        await BackgroundWork.RunAsync(() =>
        {
            onBackground = BackgroundWork.OnBackgroundThread;
            policy = BackgroundWork.CurrentPolicy();
        });
        Assert.IsTrue(onBackground);
        Assert.AreEqual(BackgroundWork.SchedIdle, policy, "SCHED_IDLE");
        Assert.IsFalse(BackgroundWork.OnBackgroundThread, "the awaiting code resumes on the thread pool, not on the background thread");
        Assert.AreNotEqual(BackgroundWork.SchedIdle, BackgroundWork.CurrentPolicy());

        var e = await Assert.ThrowsExactlyAsync<IOException>(() => BackgroundWork.RunAsync(() => throw new IOException("disk")));
        Assert.AreEqual("disk", e.Message);
    }

    [TestMethod]
    public async Task TheDeadline_IsTheFlowsOwn_NotItsCallers()
    {
        static async Task AskAsync()
        {
            BackgroundWork.Until = DateTime.MaxValue;
            await Task.Yield();
            Assert.AreEqual(DateTime.MaxValue, BackgroundWork.Until);
        }
        await AskAsync();
        Assert.AreEqual(default, BackgroundWork.Until, "set in a callee's flow: the caller's next batch decides for itself");
    }
    [TestMethod]
    [DoNotParallelize] // the background threads are the process's: not while another class replicates
    public async Task CpuWork_LeavesACoreFree_WhileWaitsBesideItAreNotLimited()
    {
        using (BackgroundWork.EnterCpuWork())
        {
            Assert.AreEqual(0, BackgroundWork.InCpuWork, "off the background threads it is a no-op");
        }
        BackgroundWork.Until = DateTime.UtcNow.AddMinutes(5);
        int items = BackgroundWork.CoresForCopies + 3, active = 0, maxActive = 0, inCpu = 0, maxInCpu = 0;
        static void Max(ref int max, int now)
        {
            int seen;
            while (now > (seen = Volatile.Read(ref max)) && Interlocked.CompareExchange(ref max, now, seen) != seen)
            {
            }
        }
        await Task.WhenAll(Enumerable.Range(0, items).Select(_ => BackgroundWork.RunAsync(() =>
        {
            Max(ref maxActive, Interlocked.Increment(ref active));
            Thread.Sleep(200); // a disk's flush: not limited
            using (BackgroundWork.EnterCpuWork())
            {
                Max(ref maxInCpu, Interlocked.Increment(ref inCpu));
                Thread.Sleep(30);
                Interlocked.Decrement(ref inCpu);
            }
            Interlocked.Decrement(ref active);
        })));
        Assert.AreEqual(BackgroundWork.CoresForCopies, maxInCpu, $"copies at once, of {items} items");
        Assert.IsTrue(maxActive > BackgroundWork.CoresForCopies, $"waits beside them: {maxActive}");
        Assert.AreEqual(0, BackgroundWork.InCpuWork);
    }
    [TestMethod]
    [DoNotParallelize] // the background threads are the process's: not while another class replicates
    public async Task WorkStillWaitingPastItsDeadline_RunsOnThePoolInstead()
    {
        // Every background thread held, as a machine whose cores other programs keep busy holds idle-priority threads.
        using var release = new ManualResetEventSlim();
        using var started = new CountdownEvent(BackgroundWork.MaxThreads);
        BackgroundWork.Until = DateTime.UtcNow.AddMinutes(5);
        List<Task> held = Enumerable.Range(0, BackgroundWork.MaxThreads).Select(_ => BackgroundWork.RunAsync(() =>
        {
            started.Signal();
            release.Wait();
        })).ToList();
        try
        {
            Assert.IsTrue(started.Wait(TimeSpan.FromSeconds(10)), "every background thread holds one");
            long rescued = BackgroundWork.Rescued;
            BackgroundWork.Until = DateTime.UtcNow.AddMilliseconds(100);
            bool onBackground = true;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await BackgroundWork.RunAsync(() => onBackground = BackgroundWork.OnBackgroundThread).WaitAsync(TimeSpan.FromSeconds(5));
            Assert.IsFalse(onBackground, "ran on the thread pool");
            Assert.AreEqual(rescued + 1, BackgroundWork.Rescued);
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(90), $"it waited for a background thread until its deadline first: {clock.Elapsed}");
        }
        finally
        {
            release.Set();
            await Task.WhenAll(held);
        }
    }
}
