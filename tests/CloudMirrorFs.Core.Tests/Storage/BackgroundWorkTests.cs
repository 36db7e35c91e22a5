using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Tests.Storage;

[TestClass]
public sealed class BackgroundWorkTests
{
    [TestMethod]
    public async Task NotAsked_OrWhenTheTimeIsUp_RunsOnTheCallingThread_AndThrowsAsItThrows()
    {
        foreach (TimeSpan time in new[] { TimeSpan.Zero, TimeSpan.FromMilliseconds(1) })
        {
            BackgroundWork.KeepFor(time);
            await Task.Delay(20); // past the 1 ms
            int caller = Environment.CurrentManagedThreadId, ran = 0;
            Task t = BackgroundWork.RunAsync(() => ran = Environment.CurrentManagedThreadId);
            Assert.IsTrue(t.IsCompletedSuccessfully);
            Assert.AreEqual(caller, ran, $"asked for {time}");
            Assert.ThrowsExactly<IOException>(() => BackgroundWork.RunAsync(() => throw new IOException("disk")));
        }
    }

    [TestMethod]
    public async Task Asked_RunsOnABackgroundThread_ThenResumesOffIt()
    {
        BackgroundWork.KeepFor(TimeSpan.FromMinutes(5));
        bool onBackground = false;
        await BackgroundWork.RunAsync(() => onBackground = BackgroundWork.OnBackgroundThread);
        Assert.IsTrue(onBackground);
        Assert.IsFalse(BackgroundWork.OnBackgroundThread, "the awaiting code resumes on the thread pool, not on the background thread");

        var e = await Assert.ThrowsExactlyAsync<IOException>(() => BackgroundWork.RunAsync(() => throw new IOException("disk")));
        Assert.AreEqual("disk", e.Message);
    }

    [TestMethod]
    public async Task TheAsk_IsTheFlowsOwn_NotItsCallers()
    {
        static async Task AskAsync()
        {
            BackgroundWork.KeepFor(TimeSpan.FromMinutes(5));
            await Task.Yield();
            Assert.IsTrue(BackgroundWork.Asked);
        }
        await AskAsync();
        Assert.IsFalse(BackgroundWork.Asked, "set in a callee's flow: the caller's next batch decides for itself");
    }

    [TestMethod]
    [DoNotParallelize] // the background threads are the process's: not while another class replicates
    public async Task CpuWork_LeavesACoreFree_WhileWaitsBesideItAreNotLimited()
    {
        using (BackgroundWork.EnterCpuWork())
        {
            Assert.AreEqual(0, BackgroundWork.InCpuWork, "off the background threads it is a no-op");
        }
        BackgroundWork.KeepFor(TimeSpan.FromMinutes(5));
        int items = BackgroundWork.CoresForCopies + 3, inCpu = 0, maxInCpu = 0;
        using var allStarted = new CountdownEvent(items);
        await Task.WhenAll(Enumerable.Range(0, items).Select(_ => BackgroundWork.RunAsync(() =>
        {
            // Every item waits here until all have started (a disk's flush, say): the waits are not limited.
            allStarted.Signal();
            Assert.IsTrue(allStarted.Wait(TimeSpan.FromSeconds(30)), "all items under way at once");
            using (BackgroundWork.EnterCpuWork())
            {
                int now = Interlocked.Increment(ref inCpu);
                int seen;
                while (now > (seen = Volatile.Read(ref maxInCpu)) && Interlocked.CompareExchange(ref maxInCpu, now, seen) != seen)
                {
                }
                Thread.Sleep(30);
                Interlocked.Decrement(ref inCpu);
            }
        })));
        Assert.AreEqual(BackgroundWork.CoresForCopies, maxInCpu, $"copies at once, of {items} items contending");
        Assert.AreEqual(0, BackgroundWork.InCpuWork);
    }

    [TestMethod]
    [DoNotParallelize] // the background threads are the process's: not while another class replicates
    public async Task WorkStillWaitingWhenItsTimeIsUp_RunsOnThePoolInstead()
    {
        // Every background thread held (a landing whose puts wait for a slow disk).
        using var release = new ManualResetEventSlim();
        using var started = new CountdownEvent(BackgroundWork.MaxThreads);
        BackgroundWork.KeepFor(TimeSpan.FromMinutes(5));
        List<Task> held = Enumerable.Range(0, BackgroundWork.MaxThreads).Select(_ => BackgroundWork.RunAsync(() =>
        {
            started.Signal();
            release.Wait();
        })).ToList();
        try
        {
            Assert.IsTrue(started.Wait(TimeSpan.FromSeconds(10)), "every background thread holds one");
            long rescued = BackgroundWork.Rescued;
            BackgroundWork.KeepFor(TimeSpan.FromMilliseconds(100));
            bool onBackground = true;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await BackgroundWork.RunAsync(() => onBackground = BackgroundWork.OnBackgroundThread).WaitAsync(TimeSpan.FromSeconds(5));
            Assert.IsFalse(onBackground, "ran on the thread pool");
            Assert.AreEqual(rescued + 1, BackgroundWork.Rescued);
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(90), $"it waited for a background thread until its time was up: {clock.Elapsed}");
        }
        finally
        {
            release.Set();
            await Task.WhenAll(held);
        }
    }
}
