using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Options;

namespace CloudMirrorFs.Host.Tests;

[TestClass]
public sealed class ConfigValidationTests
{
    private const string Good = """
        {
          "volume": { "name": "work", "stateDir": "state", "blockSize": "256KiB", "degradedTimeout": "2m" },
          "mount": { "path": "mnt" },
          "queue": { "memoryLimit": "64MiB", "diskLimit": "1GiB" },
          "facets": [
            { "name": "local", "role": "local", "kind": "directory", "path": "local" },
            { "name": "usb", "role": "remote", "kind": "directory", "path": "usb", "overflow": "block", "overflowTimeout": "5s" }
          ]
        }
        """;

    /// <summary>Each bad config: the key the message must name. Exit code 2, one message, nothing created.</summary>
    public static IEnumerable<object[]> BadConfigs =>
    [
        ["missing stateDir", """{ "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ], "volume": {} }""", "volume.stateDir"],
        ["missing volume", """{ "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "volume"],
        ["missing facets", """{ "volume": { "stateDir": "s" } }""", "facets"],
        ["empty facets", """{ "volume": { "stateDir": "s" }, "facets": [] }""", "facets"],
        ["unknown kind", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "ftp", "path": "l" } ] }""", "facets[0].kind"],
        ["unknown role", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "primary", "kind": "directory", "path": "l" } ] }""", "facets[0].role"],
        ["two facets one folder", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "a", "role": "local", "kind": "directory", "path": "x" }, { "name": "b", "role": "remote", "kind": "directory", "path": "x/" } ] }""", "facets[1].path"],
        ["nested facets", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "a", "role": "local", "kind": "directory", "path": "x" }, { "name": "b", "role": "remote", "kind": "directory", "path": "x/y" } ] }""", "facets[1].path"],
        ["facet inside stateDir", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "a", "role": "local", "kind": "directory", "path": "s/local" } ] }""", "facets[0].path"],
        ["duplicate names", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "a", "role": "local", "kind": "directory", "path": "x" }, { "name": "a", "role": "remote", "kind": "directory", "path": "y" } ] }""", "facets[1].name"],
        ["no local facet", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "a", "role": "remote", "kind": "directory", "path": "x" } ] }""", "facets"],
        ["s3 as local", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "a", "role": "local", "kind": "s3", "bucket": "b" } ] }""", "facets[0].role"],
        ["s3 without bucket", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" }, { "name": "a", "role": "remote", "kind": "s3" } ] }""", "facets[1].bucket"],
        ["azure without container", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" }, { "name": "a", "role": "remote", "kind": "azure" } ] }""", "facets[1].container"],
        ["directory without path", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory" } ] }""", "facets[0].path"],
        ["typo key", """{ "volume": { "stateDir": "s", "blocksize": "1MiB" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "volume.blocksize"],
        ["bad block size", """{ "volume": { "stateDir": "s", "blockSize": "300KiB" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "volume.blockSize"],
        ["zero degraded timeout", """{ "volume": { "stateDir": "s", "degradedTimeout": "0s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "volume.degradedTimeout"],
        ["bad degraded timeout", """{ "volume": { "stateDir": "s", "degradedTimeout": "soon" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "volume.degradedTimeout"],
        ["case names not a bool", """{ "volume": { "stateDir": "s", "caseInsensitiveNames": "yes" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "volume.caseInsensitiveNames"],
        ["bad size text", """{ "volume": { "stateDir": "s" }, "queue": { "memoryLimit": "lots" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "queue.memoryLimit"],
        ["bad overflow", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" }, { "name": "r", "role": "remote", "kind": "directory", "path": "r", "overflow": "drop" } ] }""", "facets[1].overflow"],
        ["literal secret", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" }, { "name": "r", "role": "remote", "kind": "s3", "bucket": "b", "secretAccessKey": "hunter2" } ] }""", "facets[1].secretAccessKey"],
        ["wrong type", """{ "volume": { "stateDir": 5 }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "volume.stateDir"],
        ["not json", """{ "volume": { "stateDir": "s" }, """, "not valid JSON"],
        ["mount inside facet", """{ "volume": { "stateDir": "s" }, "mount": { "path": "l/m" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "mount.path"],
    ];

    [TestMethod]
    [DynamicData(nameof(BadConfigs))]
    public async Task Status_BadConfig_ExitsTwoWithOneMessageNamingTheKey_NothingCreated(string label, string json, string key)
    {
        using var cli = new Cli();
        string path = cli.Write("cmfs.json", json);
        string[] before = cli.Listing();
        var (code, stdout, stderr) = await cli.RunAsync("init", "--config", path);
        Assert.AreEqual(2, code, $"{label}: {stderr}");
        Assert.AreEqual("", stdout, label);
        string[] lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual(1, lines.Length, $"{label}: one message, got: {stderr}");
        StringAssert.Contains(lines[0], key, label);
        CollectionAssert.AreEqual(before, cli.Listing(), $"{label}: no state left behind");
    }

    [TestMethod]
    public async Task Init_LiteralSecret_MessageNeverHoldsTheSecret()
    {
        using var cli = new Cli();
        string path = cli.Write("cmfs.json", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" }, { "name": "r", "role": "remote", "kind": "azure", "container": "c", "connectionString": "AccountKey=SuperSecretValue123" } ] }""");
        var (code, _, stderr) = await cli.RunAsync("init", "--config", path);
        Assert.AreEqual(2, code);
        Assert.IsFalse(stderr.Contains("SuperSecretValue123", StringComparison.Ordinal), stderr);
    }

    [TestMethod]
    public void SecretReference_MissingVariable_NamesKeyAndVariableNotValue()
    {
        var e = Assert.ThrowsExactly<ConfigException>(() => SecretReference.Resolve("env:CMFS_TEST_UNSET_VARIABLE", "facets[1].secretAccessKey", "/"));
        StringAssert.Contains(e.Message, "facets[1].secretAccessKey");
        StringAssert.Contains(e.Message, "CMFS_TEST_UNSET_VARIABLE");
        Environment.SetEnvironmentVariable("CMFS_TEST_SET_VARIABLE", "s3cr3t-value");
        Assert.AreEqual("s3cr3t-value", SecretReference.Resolve("env:CMFS_TEST_SET_VARIABLE", "k", "/"));
        var literal = Assert.ThrowsExactly<ConfigException>(() => SecretReference.Resolve("s3cr3t-value", "k", "/"));
        Assert.IsFalse(literal.Message.Contains("s3cr3t-value", StringComparison.Ordinal));
    }

    [TestMethod]
    public void Parse_GoodConfig_ResolvesRelativePathsAgainstTheConfigFolder()
    {
        VolumeOptionsAssert(VolumeConfigLoader.Parse(Good, "/srv/cfg", "cmfs.json", needMount: true));
    }

    [TestMethod]
    public void Parse_NoQueueSection_TakesTheMachinesMemoryDefault_ASixteenthBetween64MiBAnd512MiB()
    {
        string bare = """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""";
        var o = VolumeConfigLoader.Parse(bare, "/srv/cfg", "cmfs.json", needMount: false);
        Assert.AreEqual(QueueOptions.DefaultMemoryLimit, o.Queue.MemoryLimit);
        Assert.AreEqual(QueueOptions.DefaultMemoryLimitFor(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes), o.Queue.MemoryLimit);
        Assert.AreEqual(64L << 20, QueueOptions.DefaultMemoryLimitFor(512L << 20), "a small machine keeps the floor");
        Assert.AreEqual(64L << 20, QueueOptions.DefaultMemoryLimitFor(1L << 30));
        Assert.AreEqual(256L << 20, QueueOptions.DefaultMemoryLimitFor(4L << 30));
        Assert.AreEqual(512L << 20, QueueOptions.DefaultMemoryLimitFor(8L << 30));
        Assert.AreEqual(512L << 20, QueueOptions.DefaultMemoryLimitFor(256L << 30), "a large machine stops at the ceiling");
        string half = bare.Replace("\"facets\"", "\"queue\": { \"memoryLimit\": \"32MiB\" }, \"facets\"", StringComparison.Ordinal);
        Assert.AreEqual(32L << 20, VolumeConfigLoader.Parse(half, "/srv/cfg", "cmfs.json", needMount: false).Queue.MemoryLimit, "a value given is taken as it is");
    }

    [TestMethod]
    public void Parse_CaseInsensitiveNames_DefaultsToThePlatformsWay_AndIsTakenWhenGiven()
    {
        Assert.AreEqual(OperatingSystem.IsWindows(), VolumeConfigLoader.Parse(Good, "/srv/cfg", "cmfs.json", needMount: true).CaseInsensitiveNames);
        string on = Good.Replace("\"degradedTimeout\": \"2m\"", "\"degradedTimeout\": \"2m\", \"caseInsensitiveNames\": true", StringComparison.Ordinal);
        Assert.IsTrue(VolumeConfigLoader.Parse(on, "/srv/cfg", "cmfs.json", needMount: true).CaseInsensitiveNames);
    }

    private static void VolumeOptionsAssert(CloudMirrorFs.Options.VolumeOptions o)
    {
        Assert.AreEqual("work", o.Name);
        Assert.AreEqual("/srv/cfg/state", o.StateDir);
        Assert.AreEqual("/srv/cfg/mnt", o.MountPath);
        Assert.AreEqual(256 * 1024, o.BlockSize);
        Assert.AreEqual(TimeSpan.FromMinutes(2), o.DegradedTimeout);
        Assert.AreEqual(64L << 20, o.Queue.MemoryLimit);
        Assert.AreEqual(1L << 30, o.Queue.DiskLimit);
        Assert.AreEqual("/srv/cfg/state/queue", o.QueuePath);
        Assert.AreEqual("/srv/cfg/usb", o.Facets[1].Path);
        Assert.AreEqual(CloudMirrorFs.Options.OverflowPolicy.Block, o.Facets[1].Overflow);
        Assert.AreEqual(TimeSpan.FromSeconds(5), o.Facets[1].OverflowTimeout);
    }

    [TestMethod]
    public void Parse_MountVerbWithoutMountPath_NamesMountPath()
    {
        var e = Assert.ThrowsExactly<ConfigException>(() => VolumeConfigLoader.Parse("""{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" } ] }""", "/x", "c", needMount: true));
        Assert.AreEqual("mount.path", e.Key);
    }

    [TestMethod]
    [DataRow("256KiB", 262144L)]
    [DataRow("64MiB", 67108864L)]
    [DataRow("20GiB", 21474836480L)]
    [DataRow("1.5GiB", 1610612736L)]
    [DataRow("512B", 512L)]
    [DataRow("4k", 4096L)]
    [DataRow("10MB", 10000000L)]
    [DataRow("4096", 4096L)]
    public void ParseSize_Forms(string text, long bytes) => Assert.AreEqual(bytes, Units.ParseSize(text));

    [TestMethod]
    [DataRow("lots")]
    [DataRow("12 parsecs")]
    [DataRow("-5MiB")]
    public void ParseSize_Nonsense_IsNull(string text) => Assert.IsNull(Units.ParseSize(text));

    [TestMethod]
    public void ParseDuration_Forms()
    {
        Assert.AreEqual(TimeSpan.FromSeconds(30), Units.ParseDuration("30s"));
        Assert.AreEqual(TimeSpan.FromMinutes(5), Units.ParseDuration("5m"));
        Assert.AreEqual(TimeSpan.FromMilliseconds(250), Units.ParseDuration("250ms"));
        Assert.AreEqual(TimeSpan.FromHours(1), Units.ParseDuration("1h"));
        Assert.AreEqual(TimeSpan.FromSeconds(12), Units.ParseDuration("12"));
        Assert.IsNull(Units.ParseDuration("soon"));
    }
}
