using CloudMirrorFs.Objects;

namespace CloudMirrorFs.Tests.Objects;

[TestClass]
public sealed class FolderObjectStoreTests : ObjectStoreContractTests
{
    private readonly TempDir _dir = new("objs");

    protected override Task<IObjectStore> CreateStoreAsync() => Task.FromResult<IObjectStore>(new FolderObjectStore(Path.Combine(_dir.Path, "bucket")));

    [TestCleanup]
    public void RemoveFolder() => _dir.Dispose();

    [TestMethod]
    public async Task EnsureReady_MissingWithoutCreate_NamesTheFolder()
    {
        string missing = Path.Combine(_dir.Path, "absent");
        await using var store = new FolderObjectStore(missing);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.EnsureReadyAsync(false, default));
        Assert.AreEqual(MirrorError.NotFound, e.Error);
        StringAssert.Contains(e.Message, missing);
    }

    [TestMethod]
    public async Task Put_LeavesNoTempFileBehind()
    {
        await Store.PutAsync("x/y", Bytes(1000, 1), default);
        string[] files = Directory.GetFiles(Path.Combine(_dir.Path, "bucket"), "*", SearchOption.AllDirectories);
        Assert.AreEqual(1, files.Length, string.Join(", ", files));
    }

    [TestMethod]
    public async Task Put_IntoAFolderRemovedSinceTheLastPut_MakesItAgain()
    {
        // The store remembers the folders it made, so that each block's put does not ask again; one removed behind its
        // back (an operator tidying up, a test) must not make every later put into it fail.
        await Store.PutAsync("data/7/a", Bytes(100, 1), default);
        Directory.Delete(Path.Combine(_dir.Path, "bucket", "data", "7"), recursive: true);
        await Store.PutAsync("data/7/b", Bytes(200, 2), default);
        CollectionAssert.AreEqual(Bytes(200, 2), await Store.GetAsync("data/7/b", 0, null, default));
        Directory.Delete(Path.Combine(_dir.Path, "bucket", "data"), recursive: true);
        await Store.PutUnsyncedAsync("data/7/c", Bytes(10, 3), Bytes(20, 4), default);
        await Store.SyncAsync(default);
        CollectionAssert.AreEqual(Bytes(10, 3).Concat(Bytes(20, 4)).ToArray(), await Store.GetAsync("data/7/c", 0, null, default));
    }

    [TestMethod]
    public async Task UnsyncedPut_IntoANewFolder_FlushesTheFoldersAboveIt_AtTheNextSync()
    {
        // A folder made for a put is an entry in its parent: without the parent's flush a power cut can take the
        // folder, and the object in it, after SyncAsync said it was durable.
        string root = Path.Combine(_dir.Path, "bucket");
        var store = (FolderObjectStore)Store;
        await store.PutUnsyncedAsync("data/7/a", Bytes(10, 1), default);
        CollectionAssert.AreEquivalent(new[] { Path.Combine(root, "data", "7"), Path.Combine(root, "data"), root }, store.UnsyncedFolders.ToList());
        await store.SyncAsync(default);
        Assert.AreEqual(0, store.UnsyncedFolders.Count);
        await store.PutUnsyncedAsync("data/7/b", Bytes(10, 2), default);
        CollectionAssert.AreEquivalent(new[] { Path.Combine(root, "data", "7") }, store.UnsyncedFolders.ToList(), "a folder it made before: only itself");
        await store.PutUnsyncedAsync("data/8/a", Bytes(10, 3), default);
        CollectionAssert.AreEquivalent(new[] { Path.Combine(root, "data", "7"), Path.Combine(root, "data", "8"), Path.Combine(root, "data"), root }, store.UnsyncedFolders.ToList());
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Sync_OfAFolderRemovedByHand_Succeeds_ButAFailedFolderFlushFailsAndStaysOwed()
    {
        string root = Path.Combine(_dir.Path, "bucket");
        var store = (FolderObjectStore)Store;
        await store.PutUnsyncedAsync("data/7/a", Bytes(10, 1), default);
        Directory.Delete(Path.Combine(root, "data", "7"), recursive: true);
        await store.SyncAsync(default);
        Assert.AreEqual(0, store.UnsyncedFolders.Count);

        await store.PutUnsyncedAsync("data/9/a", Bytes(10, 2), default);
        CloudMirrorFs.Storage.AtomicFile.InjectedFsyncErrno = 5; // EIO
        try
        {
            var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.SyncAsync(default));
            Assert.AreEqual(MirrorError.IoError, e.Error, e.Message);
        }
        finally
        {
            CloudMirrorFs.Storage.AtomicFile.InjectedFsyncErrno = 0;
        }
        Assert.IsTrue(store.UnsyncedFolders.Contains(Path.Combine(root, "data", "9")));
        await store.SyncAsync(default);
        Assert.AreEqual(0, store.UnsyncedFolders.Count);
    }

    [TestMethod]
    [DataRow("../escape")]
    [DataRow("a//b")]
    [DataRow("")]
    public async Task Keys_Invalid_Refused(string key)
    {
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await Store.PutAsync(key, new byte[1], default));
        Assert.AreEqual(MirrorError.InvalidPath, e.Error);
    }
}
