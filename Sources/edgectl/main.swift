print("edgectl")
