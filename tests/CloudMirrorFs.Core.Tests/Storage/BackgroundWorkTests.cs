using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Tests.Storage;

[TestClass]
public sealed class BackgroundWorkTests
{
    [TestMethod]
    public void NotRequested_RunsOnTheCallingThread_AndThrowsAsItThrows()
    {
        int caller = Environment.CurrentManagedThreadId, ran = 0;
        Task t = BackgroundWork.RunAsync(() => ran = Environment.CurrentManagedThreadId);
        Assert.IsTrue(t.IsCompletedSuccessfully);
        Assert.AreEqual(caller, ran);
        Assert.ThrowsExactly<IOException>(() => BackgroundWork.RunAsync(() => throw new IOException("disk")));
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Requested_RunsOnAThreadAtIdlePriority_ThenResumesOffIt()
    {
        BackgroundWork.Requested = true;
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
    public async Task Requested_IsTheFlowsOwn_NotItsCallers()
    {
        static async Task AskAsync()
        {
            BackgroundWork.Requested = true;
            await Task.Yield();
            Assert.IsTrue(BackgroundWork.Requested);
        }
        await AskAsync();
        Assert.IsFalse(BackgroundWork.Requested, "set in a callee's flow: the caller's next batch decides for itself");
    }
}
