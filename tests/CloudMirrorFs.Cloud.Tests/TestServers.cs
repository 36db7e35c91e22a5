using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CloudMirrorFs.Cloud.Tests;

/// <summary>
/// Starts real servers on 127.0.0.1 for the whole test assembly: s3rver (S3) and Azurite (Azure Blob), each on a
/// free port with its own temp folder, from tests/emulators (npm). Missing servers fail the run with the command
/// that installs them; nothing is skipped.
/// </summary>
[TestClass]
public static class TestServers
{
    public const string AzuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    public const string S3Bucket = "cmfs-tests";
    private static readonly List<Process> Processes = [];
    private static string _root = "";

    public static int S3Port { get; private set; }

    public static int AzuritePort { get; private set; }

    public static string S3Endpoint => $"http://127.0.0.1:{S3Port}";

    public static string AzureConnectionString(string key = AzuriteKey)
        => $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint=http://127.0.0.1:{AzuritePort}/devstoreaccount1;";

    [AssemblyInitialize]
    public static async Task StartAsync(TestContext _)
    {
        string emulators = FindEmulators();
        _root = Path.Combine(Path.GetTempPath(), "cmfs-servers-" + Environment.ProcessId);
        Directory.CreateDirectory(_root);
        S3Port = FreePort();
        AzuritePort = FreePort();
        string s3Dir = Directory.CreateDirectory(Path.Combine(_root, "s3")).FullName;
        string azDir = Directory.CreateDirectory(Path.Combine(_root, "azurite")).FullName;
        Start(Path.Combine(emulators, "s3rver"), ["-d", s3Dir, "-a", "127.0.0.1", "-p", S3Port.ToString(), "--configure-bucket", S3Bucket, "--silent"]);
        Start(Path.Combine(emulators, "azurite-blob"), ["--blobHost", "127.0.0.1", "--blobPort", AzuritePort.ToString(), "--location", azDir, "--skipApiVersionCheck", "--disableTelemetry", "--silent"]);
        await WaitForPortAsync(S3Port, "s3rver");
        await WaitForPortAsync(AzuritePort, "azurite-blob");
    }

    [AssemblyCleanup]
    public static void Stop()
    {
        foreach (Process p in Processes)
        {
            try
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string FindEmulators()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "tests", "emulators");
            if (Directory.Exists(candidate))
            {
                string bin = Path.Combine(candidate, "node_modules", ".bin");
                if (!File.Exists(Path.Combine(bin, "s3rver")) || !File.Exists(Path.Combine(bin, "azurite-blob")))
                {
                    throw new InvalidOperationException($"the test servers are not installed in {candidate}; run: npm ci --prefix tests/emulators");
                }
                return bin;
            }
        }
        throw new InvalidOperationException("tests/emulators not found above the test folder; run the tests from the repository (bash scripts/test.sh)");
    }

    private static void Start(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        Process p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        Processes.Add(p);
    }

    internal static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static async Task WaitForPortAsync(int port, string name)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        throw new InvalidOperationException($"{name} did not start listening on 127.0.0.1:{port} within 60 s");
    }
}
