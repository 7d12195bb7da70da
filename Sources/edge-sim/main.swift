print("edge-sim")
