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
    [DataRow("../escape")]
    [DataRow("a//b")]
    [DataRow("")]
    public async Task Keys_Invalid_Refused(string key)
    {
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await Store.PutAsync(key, new byte[1], default));
        Assert.AreEqual(MirrorError.InvalidPath, e.Error);
    }
}
